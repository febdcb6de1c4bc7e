"""Splits as plain files: ``export`` writes one as ``train.tsv`` / ``valid.tsv`` / ``test.tsv`` with
original ids, readable by the built-in ``given`` splitter and by other frameworks. Written with
:func:`recbench.fileio.atomic_write`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .data import Dataset, Interactions, Split
from .fileio import atomic_write

PARTS = ("train", "valid", "test")


def export(ds: Dataset, split: Split, out: Path) -> list[Path]:
    """Write ``split`` as ``train.tsv`` / ``valid.tsv`` / ``test.tsv`` with original ids (plus
    rating and timestamp when the data has them), readable by :func:`given` and other frameworks."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PARTS:
        part: Interactions | None = getattr(split, name)
        if part is None:
            continue
        columns = {"user": ds.user_ids[part.user], "item": ds.item_ids[part.item]}
        if part.rating is not None:
            columns["rating"] = part.rating
        if part.timestamp is not None:
            columns["timestamp"] = part.timestamp
        path = out / f"{name}.tsv"
        frame = pd.DataFrame(columns)
        atomic_write(path, lambda f: frame.to_csv(f, sep="\t", header=False, index=False))
        written.append(path)
    return written
