"""ML-100K for the quality scripts: the registered dataset plugin on the shared copy, and the
published u1..u5 folds mapped onto its ids."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recbench import Dataset, Interactions
from recbench.config import from_mapping
from recbench.registry import Registry
from recbench.specs import LoadContext

DATA = Path(os.environ.get("RECBENCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "datasets")) / "ml-100k"


def load(registry: Registry, data: Path = DATA) -> Dataset:
    spec = registry.spec("dataset", "ml-100k")
    cfg = from_mapping(spec.config, {"path": str(data)})
    return spec.load(cfg, LoadContext(None, Path(tempfile.mkdtemp())))


def published_folds(ds: Dataset, data: Path = DATA
                    ) -> Iterator[tuple[int, Interactions, Interactions]]:
    """(fold, train, test) for GroupLens's u1..u5 base/test files, in ``ds``'s id space."""
    x = ds.interactions
    for fold in range(1, 6):
        parts = []
        for suffix in ("base", "test"):
            a = np.loadtxt(data / f"u{fold}.{suffix}", dtype=np.int64)
            users = np.searchsorted(ds.user_ids, a[:, 0])  # ids are sorted (Dataset.from_arrays)
            items = np.searchsorted(ds.item_ids, a[:, 1])
            parts.append(Interactions(users, items, x.n_users, x.n_items,
                                      a[:, 2].astype(np.float32)))
        yield fold, parts[0], parts[1]
