"""The result store: one JSON record (+ one .npz of per-user values) per trial, keyed by trial hash.

Layout under the store's root::

    trials/<key>.json              a successful trial's record
    trials/<key>-<sha12>.npz       its per-user values, named by content (sha256 in the record),
                                   with the evaluated user ids (``__user_ids__``) they align with
    failed/<key>.json              the last failure of a trial; retried by the next run
    logs/<key>.log                 the trial's captured output, every attempt appended
    claims/<key>.claim             the process running the trial now (:mod:`recbench.claims`)
    quarantine/                    damaged records and files, set aside (never deleted)

Writes are atomic (:func:`recbench.fileio.atomic_write`), the per-user values before the record, so
a record on disk always has its values. A record is published with a no-replace link: when two runs
store the same trial, the first one wins and the second is told "already stored" (not a failure), so
a stored success is never overwritten and never contradicted by a stale failure.

Every read verifies: a record that does not parse, or whose per-user file is missing or does not
match the sha256 in the record, is reported (``unreadable`` and a logged warning, with its path),
moved to ``quarantine/`` and treated as absent, so the next run re-runs its trial.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import RecbenchError
from .fileio import atomic_create, atomic_write, digest_bytes, digest_file

log = logging.getLogger(__name__)

PutResult = Literal["stored", "already stored"]

# The entry of a per-user file holding the user ids its values align with: paired tests pair users
# by id, never by position. Files written before it existed lack it (their trials are unpairable).
USER_IDS = "__user_ids__"


class StoreError(RecbenchError):
    """A stored trial is damaged or missing; it has been set aside and its trial will re-run."""


class _Damaged(Exception):
    """Internal: why a stored record cannot be trusted."""


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.trials = self.root / "trials"
        self.failed = self.root / "failed"
        self.quarantine = self.root / "quarantine"
        self.models = self.root / "models"  # saved fitted models (`recbench run --save-models`)
        self.logs = self.root / "logs"  # each trial's captured output, <key>.log
        self.unreadable: list[str] = []  # "<path>: <why> (moved to <where>)", in order found
        self._verified: dict[str, dict[str, Any]] = {}  # key -> record, checked in this process

    # ------------------------------------------------------------------ reading

    def has(self, key: str) -> bool:
        """Whether a trustworthy successful record of ``key`` is stored (damaged: set aside)."""
        try:
            self._load_ok(key)
        except StoreError:
            return False
        return True

    def get(self, key: str) -> dict[str, Any]:
        """The stored successful record of ``key``; :class:`StoreError` when absent or damaged."""
        return dict(self._load_ok(key))

    def per_user(self, key: str) -> dict[str, np.ndarray]:
        """Per-user metric values of a stored trial (``{}`` if none), verified by sha256; each
        aligned with :meth:`user_ids`."""
        return {n: v for n, v in self._per_user_file(key).items() if n != USER_IDS}

    def user_ids(self, key: str) -> np.ndarray | None:
        """The user ids the per-user values of ``key`` align with; None for a trial without
        per-user values or stored before the ids were (it cannot be paired with another)."""
        return self._per_user_file(key).get(USER_IDS)

    def _per_user_file(self, key: str) -> dict[str, np.ndarray]:
        files = self._load_ok(key).get("files")
        if files is None:  # a record from before sha256s were stored: read unverified
            files = {"per_user": f"{key}.npz"} if (self.trials / f"{key}.npz").is_file() else {}
        name = files.get("per_user")
        if name is None:
            return {}
        path = self.trials / name
        try:
            data = path.read_bytes()
        except OSError as e:  # permissions, I/O: the file may be fine, so it stays where it is
            raise StoreError(f"stored trial {key}: its per-user file {path} could not be read "
                             f"({e}); fix access to the results directory") from None
        try:
            if "per_user_sha256" in files and digest_bytes(data) != files["per_user_sha256"]:
                raise _Damaged(f"per-user file {path} does not match the sha256 in its record")
            with np.load(io.BytesIO(data)) as z:
                return {n.replace("_at_", "@"): z[n] for n in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, _Damaged) as e:
            where = self._set_aside(self.trials / f"{key}.json", str(e), key)
            raise StoreError(f"stored trial {key}: {e}; moved to {where}; run the experiment again "
                             f"to recompute it") from None

    def model_state(self, key: str) -> bytes:
        """The saved fitted model of a stored trial (``recbench run --save-models``), verified by
        sha256; :class:`StoreError` when the trial has none or it is damaged (then the trial is set
        aside with it, so the next run with ``--save-models`` recomputes both)."""
        saved = self._load_ok(key).get("saved_model") or {}
        if "file" not in saved:
            why = saved.get("error", "it was run without --save-models")
            raise StoreError(f"stored trial {key} has no saved model: {why}")
        path = self.models / saved["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as e:  # permissions, I/O: the file may be fine, so it stays where it is
            raise StoreError(f"stored trial {key}: its saved model {path} could not be read "
                             f"({e}); fix access to the results directory") from None
        if data is None or digest_bytes(data) != saved.get("sha256"):
            why = "is missing" if data is None else "does not match the sha256 in its record"
            where = self._set_aside(self.trials / f"{key}.json", f"saved model {path} {why}", key)
            raise StoreError(f"stored trial {key}: its saved model {path} {why}; the trial was "
                             f"moved to {where}; run the experiment again with --save-models")
        return data

    def put_model(self, key: str, data: bytes) -> dict[str, Any]:
        """Write a fitted model's state (bytes) for trial ``key`` before its record is stored;
        returns the record's ``saved_model`` entry (file name in ``models/``, sha256, size)."""
        sha = digest_bytes(data)
        path = self.models / f"{key}-{sha[:12]}.msgpack"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(data), "wb")
        return {"file": path.name, "sha256": sha, "bytes": len(data)}

    def records(self, include_failed: bool = False) -> Iterator[dict[str, Any]]:
        """Every readable record (successes, then failures if asked); damaged ones are set aside."""
        for path in sorted(self.trials.glob("*.json")) if self.trials.is_dir() else []:
            try:
                yield dict(self._load_ok(path.stem))
            except StoreError:
                continue
        if include_failed and self.failed.is_dir():
            for path in sorted(self.failed.glob("*.json")):
                try:
                    yield json.loads(path.read_text())
                except (OSError, ValueError) as e:
                    self._set_aside(path, f"unreadable record: {e}")

    def _load_ok(self, key: str) -> dict[str, Any]:
        if key in self._verified:
            return self._verified[key]
        path = self.trials / f"{key}.json"
        if not path.is_file():
            raise StoreError(f"trial {key} is not stored in {self.trials}")
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or record.get("key") != key:
                raise _Damaged("not a trial record of this key")
            self._check_files(record)
        except OSError as e:  # permissions, I/O: the file may be fine, so it stays where it is
            raise StoreError(f"stored trial {path} could not be read ({e}); fix access to the "
                             f"results directory and run again") from None
        except (ValueError, _Damaged) as e:
            where = self._set_aside(path, str(e), key)
            raise StoreError(f"stored trial {path} was unreadable ({e}); moved to {where}; the "
                             f"next run re-runs it") from None
        self._verified[key] = record
        return record

    def _check_files(self, record: dict[str, Any]) -> None:
        files = record.get("files", {})
        if "per_user" not in files:
            return  # a trial without per-user values
        path = self.trials / files["per_user"]
        if not path.is_file():
            raise _Damaged(f"its per-user file {path} is missing")
        if digest_file(path) != files.get("per_user_sha256"):
            raise _Damaged(f"its per-user file {path} does not match the sha256 in the record "
                           f"(truncated or modified)")

    def _set_aside(self, path: Path, why: str, key: str | None = None) -> Path:
        """Move a damaged record (and its per-user file) to quarantine/; report where it went."""
        self._verified.pop(key or "", None)
        self.quarantine.mkdir(parents=True, exist_ok=True)
        # Nanoseconds and the process id: two set-asides never pick one name (never overwritten).
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns() % 10**9:09d}-{os.getpid()}"
        moved = self.quarantine
        companions = ([*sorted(self.trials.glob(f"{key}*.npz")),
                       *sorted(self.models.glob(f"{key}-*.msgpack"))] if key else [])
        for src in [path, *companions]:
            dest = self.quarantine / f"{src.parent.name}-{stamp}-{src.name}"
            try:
                shutil.move(str(src), dest)  # within one store: a rename
            except FileNotFoundError:  # absent, or another process set it aside first
                continue
            moved = dest if src == path else moved
        message = f"{path}: {why} (moved to {moved})"
        self.unreadable.append(message)
        log.warning("unreadable stored record %s", message)
        return moved

    # ------------------------------------------------------------------ writing

    def put(self, record: dict[str, Any], per_user: dict[str, np.ndarray] | None = None
            ) -> PutResult:
        """Store a trial. A successful record gains ``record["files"]`` (per-user file name and
        sha256) in place. When a trustworthy success of the same key is already stored (another run
        got there first), nothing is written and ``"already stored"`` is returned."""
        key = record["key"]
        if self.has(key):
            return "already stored"
        if record["status"] not in ("ok", "unsupported"):  # unsupported is final, like ok
            failed = self.failed / f"{key}.json"
            atomic_write(failed, lambda f: json.dump(record, f, indent=1))
            if self.has(key):  # another run stored its success meanwhile: no failure to report
                failed.unlink(missing_ok=True)
                return "already stored"
            return "stored"
        npz: Path | None = None
        if per_user:
            _check_aligned(key, per_user)
            buf = io.BytesIO()
            np.savez_compressed(buf, **{n.replace("@", "_at_"): v for n, v in per_user.items()})
            data = buf.getvalue()
            sha = digest_bytes(data)
            npz = self.trials / f"{key}-{sha[:12]}.npz"
            record["files"] = {"per_user": npz.name, "per_user_sha256": sha}
        text = json.dumps(record, indent=1)  # fails (e.g. a non-JSON value) before any write
        if npz is not None:
            atomic_write(npz, lambda f: f.write(data), "wb")
        try:
            created = atomic_create(self.trials / f"{key}.json", lambda f: f.write(text))
        except BaseException:  # e.g. a full disk: no record, so its values go too
            self._drop_values(key, npz)
            raise
        if not created:
            self._drop_values(key, npz)  # ours lost the race
            return "already stored"
        self._verified[key] = json.loads(text)
        (self.failed / f"{key}.json").unlink(missing_ok=True)
        return "stored"

    def _drop_values(self, key: str, npz: Path | None) -> None:
        """Remove the per-user file of a record that was not stored, unless a stored record of
        ``key`` names it: the name is a content hash, so another run's identical values share it."""
        if npz is None:
            return
        try:
            winner = self._load_ok(key).get("files", {}).get("per_user")
        except StoreError:
            winner = None
        if winner != npz.name:
            npz.unlink(missing_ok=True)


def _check_aligned(key: str, per_user: dict[str, np.ndarray]) -> None:
    """Every per-user array has one value per user id (when the ids are given)."""
    ids = per_user.get(USER_IDS)
    if ids is None:
        return
    wrong = {n: len(v) for n, v in per_user.items() if len(v) != len(ids)}
    if wrong:
        raise StoreError(f"trial {key}: per-user values {wrong} do not align with its "
                         f"{len(ids)} user ids; the evaluator must return one value per user")
