"""The result store: one JSON record (+ one .npz of per-user values) per trial, keyed by trial hash.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), the per-user values
before the record, so a record on disk always has its values. A failed trial is written under
``failed/`` and retried on the next run; a stored success is never overwritten. A record that cannot
be read is reported and left in place, untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RecbenchError


def _atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.trials = self.root / "trials"
        self.failed = self.root / "failed"
        self.unreadable: list[str] = []

    def has(self, key: str) -> bool:
        return (self.trials / f"{key}.json").is_file()

    def put(self, record: dict[str, Any], per_user: dict[str, np.ndarray] | None = None) -> None:
        key = record["key"]
        if record["status"] == "ok":
            if self.has(key):
                raise RecbenchError(f"trial {key} is already stored in {self.trials}; not overwriting")
            if per_user:
                arrays = {name.replace("@", "_at_"): v for name, v in per_user.items()}
                _atomic_write(self.trials / f"{key}.npz", lambda f: np.savez_compressed(f, **arrays),
                              "wb")
            _atomic_write(self.trials / f"{key}.json", lambda f: json.dump(record, f, indent=1))
            (self.failed / f"{key}.json").unlink(missing_ok=True)
        else:
            _atomic_write(self.failed / f"{key}.json", lambda f: json.dump(record, f, indent=1))

    def get(self, key: str) -> dict[str, Any]:
        return json.loads((self.trials / f"{key}.json").read_text())

    def per_user(self, key: str) -> dict[str, np.ndarray]:
        path = self.trials / f"{key}.npz"
        if not path.is_file():
            return {}
        with np.load(path) as z:
            return {name.replace("_at_", "@"): z[name] for name in z.files}

    def records(self, include_failed: bool = False) -> Iterator[dict[str, Any]]:
        dirs = [self.trials] + ([self.failed] if include_failed else [])
        for d in dirs:
            for path in sorted(d.glob("*.json")) if d.is_dir() else []:
                try:
                    yield json.loads(path.read_text())
                except (OSError, json.JSONDecodeError) as e:
                    self.unreadable.append(f"{path}: {e}")
