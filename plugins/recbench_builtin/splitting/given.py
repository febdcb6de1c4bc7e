"""The ``given`` splitter: the split defined by files of original ids (a published split such as
ML-100K's u1..u5, or one exported by ``recbench split export`` or another framework).

Files are tab-separated, one interaction per line, original user and item ids in the first two
columns (rating and timestamp may follow; they are taken from the dataset, not the file). A line
whose (user, item) is not in the dataset is an error naming the file and the line. Files may be
compressed (``.gz``/``.bz2``/``.xz``) and are decoded by recbench's one encoding rule.

``exclude_unknowns`` (default false: every listed row is kept) drops the test and validation rows
whose user or item never occurs in the training file, as Cornac's ``exclude_unknowns=True`` does,
so a split made by another framework is evaluated on exactly the rows that framework evaluates. It
is part of the splitter config, hence of the trial key, and the split's protocol records how many
rows it dropped per part (``excluded_unknowns``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recbench.api import (
    DataError,
    Dataset,
    Split,
    SplitterSpec,
    check,
    decode_text,
    digest_bytes,
    file_sha256,
    read_bytes,
    to_dict,
)

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class GivenConfig:
    train: str = ""
    test: str = ""
    valid: str = ""  # optional
    sep: str = "\t"
    header: bool = False  # the first line holds column names
    exclude_unknowns: bool = False  # drop test/valid rows whose user or item is not in train

    def __post_init__(self) -> None:
        check(bool(self.train) and bool(self.test),
              "given split: set train and test to the split's files, e.g. "
              "config = {train = \"u1.base\", test = \"u1.test\"}")
        check(len(self.sep) > 0, "given split: sep must not be empty")


def _read_pairs(path: Path, cfg: GivenConfig) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"given split: {path} does not exist; fix the splitter's config")
    try:
        text = decode_text(read_bytes(path))
    except DataError as e:
        raise DataError(f"given split: {e}") from None
    if not text.strip():
        raise DataError(f"given split: {path} holds no interaction")
    frame = pd.read_csv(io.StringIO(text), sep=cfg.sep, header=0 if cfg.header else None,
                        usecols=[0, 1], dtype=str, keep_default_na=False,
                        engine="python" if len(cfg.sep) > 1 else "c")
    if frame.empty:
        raise DataError(f"given split: {path} holds no interaction")
    return frame


def _positions(ids: np.ndarray, values: pd.Series, path: Path, what: str, first_line: int
               ) -> np.ndarray:
    """Internal ids of the original ``values`` (text), -1 where unknown."""
    if ids.dtype.kind in "iu":
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"given split: {path}, line {row + first_line}: {what} id "
                            f"{values.iloc[row]!r} is not an integer like the dataset's ids")
        wanted = parsed.to_numpy(np.int64)
    else:
        wanted = values.to_numpy(str)
        ids = ids.astype(str)
    order = np.argsort(ids, kind="stable")
    at = np.clip(np.searchsorted(ids[order], wanted), 0, len(ids) - 1)
    found = ids[order][at] == wanted
    return np.where(found, order[at], -1)


def _rows(ds: Dataset, path: Path, cfg: GivenConfig) -> np.ndarray:
    """Dataset rows listed in ``path`` (the first row of a repeated pair)."""
    x = ds.interactions
    frame = _read_pairs(path, cfg)
    first_line = 2 if cfg.header else 1
    users = _positions(ds.user_ids, frame.iloc[:, 0], path, "user", first_line)
    items = _positions(ds.item_ids, frame.iloc[:, 1], path, "item", first_line)
    keys, first_row = np.unique(x.user.astype(np.int64) * x.n_items + x.item, return_index=True)
    wanted = users * x.n_items + items
    at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    missing = (users < 0) | (items < 0) | (keys[at] != wanted)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"given split: {path}, line {row + first_line}: user {frame.iloc[row, 0]!r} item "
            f"{frame.iloc[row, 1]!r} is not in dataset {ds.name!r} ({int(missing.sum())} such "
            f"lines); check the preprocessing (dedup, k-core) and that the files match the data")
    return first_row[at]


def given(ds: Dataset, cfg: GivenConfig, rng: np.random.Generator) -> Split:
    """The split the files define; deterministic, ``rng`` unused."""
    x = ds.interactions
    rows = {name: _rows(ds, Path(getattr(cfg, name)), cfg) for name in PARTS if getattr(cfg, name)}
    protocol = {"splitter": "given", **to_dict(cfg)}
    if cfg.exclude_unknowns:
        known_users = np.zeros(x.n_users, bool)
        known_items = np.zeros(x.n_items, bool)
        known_users[x.user[rows["train"]]] = True
        known_items[x.item[rows["train"]]] = True
        excluded = {}
        for name in ("valid", "test"):
            if name in rows:
                r = rows[name]
                keep = known_users[x.user[r]] & known_items[x.item[r]]
                excluded[name] = int((~keep).sum())
                rows[name] = r[keep]
        if not len(rows["test"]):
            raise DataError(f"given split: exclude_unknowns dropped every row of {cfg.test}: each "
                            f"has a user or an item that {cfg.train} lacks; check that the files "
                            "belong together")
        protocol["excluded_unknowns"] = excluded
    part = {name: x.subset(r) for name, r in rows.items()}
    return Split(train=part["train"], test=part["test"], valid=part.get("valid"),
                 protocol=protocol)


def files_fingerprint(cfg: GivenConfig) -> str:
    """sha256 of the split files' contents: regenerated files are new trials, not old numbers."""
    parts = []
    for name in PARTS:
        path = getattr(cfg, name)
        if path:
            try:
                parts.append(f"{name}={file_sha256(Path(path), decompressed=True)}")
            except OSError as e:
                raise DataError(f"given split: cannot read {name} file {path}: {e}") from None
    return digest_bytes("\n".join(parts).encode())


SPECS: list[SplitterSpec] = [
    SplitterSpec("given", given, GivenConfig,
                 "the split defined by files of original ids (published splits, other frameworks)",
                 takes_dataset=True, fingerprint=files_fingerprint),
]
