"""``files``: benchmark on your own data -- a CSV, TSV, Parquet or RecBole ``.inter`` file.

No plugin to write: point ``path`` at the interactions file and name its columns::

    recbench datasets info files -o path=ratings.csv -o rating=rating -o timestamp=ts

    [[datasets]]
    name = "files"
    config = {path = "ratings.csv", user = "customer", item = "sku", timestamp = "time"}

Reading
-------
* A relative ``path`` is resolved against the data directory (``--data-dir``,
  ``LoadContext.data_dir``) when one is given, else against the current directory. ``.gz``,
  ``.bz2``, ``.xz`` and one-member ``.zip`` files are decompressed.
* ``format = "auto"`` goes by the suffix (before any compression suffix): ``.csv``; ``.tsv``,
  ``.tab``; ``.parquet``, ``.pq``; ``.inter``, ``.item``, ``.user`` (RecBole atomic files). Other
  suffixes: Parquet if the file starts with ``PAR1``, RecBole if its header fields read
  ``name:type``, else delimited text with a sniffed separator.
* Separator: ``sep`` if given (``"\\t"`` or ``"tab"`` mean a tab; several characters, such as
  ``"::"``, are one literal separator); else a tab for TSV and RecBole files, and for CSV the most
  frequent of ``,`` ``;`` tab ``|`` in the first line (ties go to the comma). CSV quoting
  (``"..."``) applies except in RecBole files.
* Header: with ``header = true`` (default) the first line names the columns. With ``header = false``
  every line is data and the columns are named by position, ``"0"``, ``"1"``, ... -- unless
  ``names`` names them (``names`` with a header replaces the header's names). A column can also be
  chosen by its 0-based position, with or without a header: ``user = 0`` (an integer is a position,
  a string a name).
* RecBole ``.inter``: tab-separated, header fields ``name:type`` (``user_id:token item_id:token
  rating:float timestamp:float``). The ``:type`` suffix is stripped, so the default ``user_id`` /
  ``item_id`` match.
* ``rating`` / ``timestamp`` left unset use a column literally named ``rating`` / ``timestamp``
  when the file has one (any format, as RecBole does with its own files); set them to ``""`` to
  ignore such a column. ``metadata["columns"]`` records the columns used.
* Files are read, decompressed, decoded and hashed with :mod:`recbench.fileio` (one encoding rule:
  a UTF-16 byte-order mark means UTF-16, a UTF-8 mark is dropped, then UTF-8, else Latin-1; one set
  of missing-value spellings, :data:`recbench.fileio.MISSING_VALUES`).
* A text file whose last line has no line end gets a :class:`PossiblyTruncatedWarning` naming the
  file and that line, and ``metadata["unterminated_last_line"] = true``. A warning, not an error:
  many editors and exports omit the final newline, so refusing would reject sound files; but a copy
  or download cut off mid-line can still parse (``5`` cut from ``50``), so the user must be told.
* Parquet goes through pandas with pyarrow (or fastparquet); without either, the error says
  ``pip install pyarrow``. Errors name the 1-based row instead of the line.

What comes out
--------------
* Ids: a column whose values all read as integers gives int64 ids (``007`` and ``7`` are one id),
  any other column string ids (surrounding spaces stripped); internal ids follow their sorted order
  (:meth:`recbench.Dataset.from_arrays`). Rating: float. Timestamp: int64 unix seconds; numbers are
  seconds (fractions dropped), text is read as ISO 8601 date/time (naive times as UTC).
* Lines whose fields are all empty (blank lines, the ``,,,`` rows spreadsheets leave) are skipped
  and counted (``metadata["blank_lines"]``).
* Duplicate rows -- the same (user, item, timestamp), or (user, item) without timestamps -- are kept
  with ``duplicates = "keep"`` (default; the protocol's ``preprocess.dedup`` then keeps one per
  pair) and counted (``metadata["duplicate_rows"]``); ``duplicates = "error"`` rejects them, naming
  both lines.
* ``rating_range = [lo, hi]`` declares the rating scale: a rating outside it is an error naming the
  line and the column (unset: any finite rating).
* ``checksum``: ``sha256:`` + the :func:`fingerprint`, a hash of the bytes of the interaction and
  feature files. With the parser's code (added by :mod:`recbench.datacache`) it keys the parse
  cache: editing a file or the parser re-parses, moving the file does not.

Bad input is a :class:`~recbench.errors.DataError` naming the file, the line (1-based, the header is
line 1) or the column, and what to do: a missing file (with what its directory holds), an empty
file, a missing column (the available ones and a did-you-mean), an empty or NaN user or item id, a
non-numeric or missing rating, a missing, negative or post-2100 (as seconds: milliseconds?)
timestamp, a line with too many fields, duplicate rows under ``duplicates = "error"``.

Feature files
-------------
``item_features`` / ``user_features`` name a table (any format above, always with a header; its
separator is sniffed: ``sep`` and ``names`` apply to the interaction file only) with one row per
item/user, matched on the column ``item_key`` / ``user_key`` (default: the name of the interaction
file's ``item`` / ``user`` column). Every other column becomes columns of a
:class:`~recbench.FeatureTable` whose row ``i`` describes internal id ``i``:

* numbers (RecBole ``float``; elsewhere a column whose values all read as numbers): one dense
  column, missing values set to 0 (counted in the metadata);
* text (RecBole ``token``, or any other column) with at most ``max_categories`` distinct values:
  one-hot, columns ``name=value``; with more (titles, descriptions) the column is skipped;
* RecBole ``token_seq`` (space-separated tokens such as genres) and Parquet list columns: multi-hot,
  columns ``name=token``, skipped beyond ``max_categories`` tokens; ``float_seq`` is skipped.

Alignment: users/items that the feature file lacks get a row of zeros; rows for ids that do not
occur in the interactions are ignored. A duplicate key is an error, and so is a file matching no id
at all (a wrong key column). ``metadata["item_features"]`` / ``["user_features"]`` record the file,
the key, the number of ids without a row (``missing``) and of ignored rows, the values set to 0 and
the skipped columns with the reason. The table is dense up to 2**24 cells, CSR beyond.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recbench.api import (
    MISSING_VALUES,
    check,
    DataError,
    Dataset,
    DatasetCard,
    DatasetSpec,
    digest_bytes,
    file_sha256,
    FeatureTable,
    LoadContext,
)

from ._tables import PossiblyTruncatedWarning, Table, open_table, resolve_path

__all__ = ["FilesConfig", "PossiblyTruncatedWarning", "SPECS", "fingerprint", "load"]

SUFFIXES: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
                            ".pq": "parquet", ".inter": "inter", ".item": "inter", ".user": "inter"}
COMPRESSED: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip")
# 2100-01-01T00:00:00Z in unix seconds: later "seconds" are almost surely milliseconds.
MAX_TIMESTAMP = 4_102_444_800
DENSE_LIMIT = 1 << 24  # feature tables up to this many cells are dense, larger ones CSR
# Spellings of a missing value in id, number and text columns (an id "NA" stays an id).
MISSING: frozenset[str] = MISSING_VALUES


@dataclass(frozen=True)
class FilesConfig:
    """Where the interaction file is and which columns hold what (see the module docstring)."""

    path: str = ""
    format: Literal["auto", "csv", "tsv", "parquet", "inter"] = "auto"
    user: str | int = "user_id"  # a column name, or a 0-based position
    item: str | int = "item_id"
    rating: str | int | None = None  # None: a column named `rating` if any; "": no rating
    timestamp: str | int | None = None  # None: a column named `timestamp` if any; "": none
    rating_range: tuple[float, float] | None = None  # [lo, hi]: ratings outside are errors
    sep: str | None = None  # None: by format (CSV: sniffed)
    header: bool = True  # False: columns are "0", "1", ... or `names`
    names: tuple[str, ...] = ()  # column names: replace the header's, or name a headerless file
    item_features: str | None = None
    item_key: str | int | None = None  # column of item_features matching items; default: `item`
    user_features: str | None = None
    user_key: str | int | None = None
    duplicates: Literal["error", "keep"] = "keep"
    max_categories: int = 100  # text feature columns with more distinct values are skipped

    def __post_init__(self) -> None:
        check(bool(self.path), "path is required: the interaction file (CSV, TSV, Parquet or "
              "RecBole .inter), e.g. `-o path=ratings.csv` or config = {path = \"ratings.csv\"}")
        for key in ("user", "item", "rating", "timestamp", "item_key", "user_key"):
            ref = getattr(self, key)
            check(not isinstance(ref, int) or ref >= 0,
                  f"{key} = {ref}: a column position counts from 0")
        check(self.user != self.item, f"user and item name the same column {self.user!r}")
        check(self.sep is None or self.sep != "", "sep must not be empty; leave it unset to use "
              "the format's separator")
        check(not (self.format == "inter" and not self.header),
              "RecBole .inter files always have a `name:type` header; drop header = false")
        check(len(set(self.names)) == len(self.names), f"names repeats a column: {self.names}")
        check(self.max_categories >= 1, f"max_categories must be >= 1, got {self.max_categories}")
        check(self.rating_range is None or (len(self.rating_range) == 2
                                            and self.rating_range[0] <= self.rating_range[1]),
              f"rating_range must be [lo, hi] with lo <= hi, got {self.rating_range}")
        check(self.rating_range is None or self.rating != "",
              'rating_range is set but rating = "" (no rating column); drop one of them')


# ---------------------------------------------------------------- columns


def _text(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Stripped text of a column and its missing mask (empty, NaN spellings, None/NaN values)."""
    missing = s.isna().to_numpy()
    if pd.api.types.is_string_dtype(s) and not missing.any():
        t = s.str.strip()
    else:
        t = s.astype(object).where(~missing, "").astype(str).str.strip()
    return t, missing | t.isin(list(MISSING_VALUES)).to_numpy()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _ids(table: Table, pos: int, key: str) -> np.ndarray:
    """A column of ids: int64 when every value reads as an integer, else str; none missing."""
    s, name = table.frame[pos], table.names[pos]
    records = table.frame.index.to_numpy()
    fix = f"Fill in the id or delete the {table.unit}, or check that {key} names the right column"
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        missing = s.isna().to_numpy()
        if not missing.any() and pd.api.types.is_float_dtype(s):
            missing = ~np.isfinite(s.to_numpy(np.float64))
        if missing.any():
            raise table.error(records[_first(missing)], name, f"the {key} id is missing (NaN)",
                              fix, int(missing.sum()))
        if pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
            return s.to_numpy(np.int64)
        a = s.to_numpy(np.float64)
        if np.all(a == np.round(a)) and np.abs(a).max(initial=0) < 2**53:
            return a.astype(np.int64)
        return a
    t, missing = _text(s)
    if missing.any():
        raise table.error(records[_first(missing)], name, f"the {key} id is empty or NaN", fix,
                          int(missing.sum()))
    as_int = pd.to_numeric(t, errors="coerce")
    if (as_int.notna().all() and as_int.dtype.kind == "i"
            and (as_int.astype(str).to_numpy() == t.to_numpy()).all()):
        return as_int.to_numpy(np.int64)
    return t.to_numpy(dtype=str)


def _as_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Series | None, np.ndarray]:
    """(float64 values, missing mask, the column as text or None, not-a-number mask)."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(np.float64, na_value=np.nan)
        return v, np.isnan(v), None, np.zeros(len(v), bool)
    t, missing = _text(s)
    v = pd.to_numeric(t.where(~missing, None), errors="coerce").to_numpy(np.float64)
    return v, missing, t, np.isnan(v) & ~missing


def _numbers(table: Table, pos: int, key: str, what: str,
             fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, missing mask) of a numeric column; text that is not a number is an error."""
    s, name = table.frame[pos], table.names[pos]
    records = table.frame.index.to_numpy()
    v, missing, t, bad = _as_float(s)
    if bad.any():
        row = _first(bad)
        raise table.error(records[row], name, f"{t.iloc[row]!r} is not a number ({key} holds "
                          f"{what})", fix, int(bad.sum()))
    infinite = np.isinf(v)
    if infinite.any():
        raise table.error(records[_first(infinite)], name, f"the {what} is infinite", fix,
                          int(infinite.sum()))
    return v, missing


def _timestamps(table: Table, pos: int) -> np.ndarray:
    """int64 unix seconds: numbers (seconds) or ISO 8601 text; in [1970, 2100)."""
    s, name = table.frame[pos], table.names[pos]
    records = table.frame.index.to_numpy()
    fix = (f"Fix or delete the {table.unit}, or leave timestamp unset if the file has no usable "
           "times")
    if pd.api.types.is_datetime64_any_dtype(s):
        missing = s.isna().to_numpy()
        v = _seconds(s)
    else:
        v, missing, t, bad = _as_float(s)
        if bad.any():  # not numbers: ISO 8601 dates/times?
            dt = pd.to_datetime(t.where(~missing, None), format="ISO8601", utc=True,
                                errors="coerce")
            dates = dt.notna().to_numpy()
            if (dates | missing).all():
                v = _seconds(dt)
            else:
                neither = bad & ~dates
                if neither.any():
                    row = _first(neither)
                    problem = (f"{t.iloc[row]!r} is neither a number (unix seconds) nor an "
                               "ISO 8601 date/time")
                else:
                    row = _first(~dates & ~missing)
                    problem = (f"{t.iloc[row]!r} is a number but other lines hold dates (e.g. "
                               f"{t.iloc[_first(bad)]!r}); use one kind")
                raise table.error(records[row], name, problem, fix, int(max(1, neither.sum())))
    if missing.any():
        raise table.error(records[_first(missing)], name, "the timestamp is missing (empty or NaN)",
                          fix, int(missing.sum()))
    if np.isinf(v).any():
        raise table.error(records[_first(np.isinf(v))], name, "the timestamp is infinite", fix)
    negative = v < 0
    if negative.any():
        row = _first(negative)
        raise table.error(records[row], name, f"negative timestamp {v[row]:g}; timestamps are unix "
                          "seconds since 1970", fix, int(negative.sum()))
    late = v >= MAX_TIMESTAMP
    if late.any():
        row = _first(late)
        raise table.error(records[row], name, f"timestamp {v[row]:.0f} lies beyond the year 2100 "
                          "as unix seconds (milliseconds or microseconds?)",
                          "Convert the column to seconds (divide by 1000 for milliseconds)",
                          int(late.sum()))
    return np.floor(v).astype(np.int64)


def _seconds(dt: pd.Series) -> np.ndarray:
    dt = pd.to_datetime(dt, utc=True)
    return ((dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64,
                                                                                 na_value=np.nan)


def _optional_column(table: Table, ref: str | int | None, key: str) -> int | None:
    if ref == "":
        return None
    if ref is None:  # unset: a column literally named `rating` / `timestamp` (RecBole's rule)
        return table.column(key, key) if key in table.names else None
    return table.column(ref, key)


# ---------------------------------------------------------------- features


def _feature_columns(table: Table, pos: int, max_categories: int
                     ) -> tuple[sp.csr_matrix | None, list[str], str | None, int]:
    """(matrix over the file's rows, column names, reason when skipped, values filled with 0)."""
    s, name = table.frame[pos], table.names[pos]
    declared = table.types.get(name)
    n = len(s)
    if declared == "float_seq":
        return None, [], "float_seq columns are not supported", 0
    is_list = s.dtype == object and s.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()
    if declared == "token_seq" or is_list:
        if is_list:
            seqs = [[] if not isinstance(v, (list, tuple, np.ndarray)) else [str(x) for x in v]
                    for v in s]
        else:
            t, missing = _text(s)
            seqs = [[] if m else v.split() for v, m in zip(t, missing)]
        vocab = sorted({tok for seq in seqs for tok in seq})
        if not vocab:
            return None, [], "no values", 0
        if len(vocab) > max_categories:
            return None, [], f"{len(vocab)} distinct tokens > max_categories = {max_categories}", 0
        code = {tok: j for j, tok in enumerate(vocab)}
        rows = np.repeat(np.arange(n), [len(q) for q in seqs])
        cols = np.fromiter((code[tok] for q in seqs for tok in q), np.int64, len(rows))
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m, [f"{name}={tok}" for tok in vocab], None, 0
    numeric_dtype = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
    if declared == "float" or (declared is None and numeric_dtype):
        v, missing = _numbers(table, pos, name, "a number", f"Fix or delete the {table.unit}")
    elif declared is None:
        t, missing = _text(s)
        v = pd.to_numeric(t.where(~missing, None), errors="coerce").to_numpy(np.float64)
        if (np.isnan(v) & ~missing).any() or np.isinf(v).any():
            v = None  # text: categories
    else:  # token and any other declared type
        v = None
    if v is not None:
        if missing.all():
            return None, [], "no values", 0
        v = np.where(missing, 0.0, v)
        return sp.csr_matrix(v.reshape(-1, 1).astype(np.float32)), [name], None, int(missing.sum())
    t, missing = _text(s)
    cats = np.unique(t.to_numpy(dtype=str)[~missing])
    if not len(cats):
        return None, [], "no values", 0
    if len(cats) > max_categories:
        return None, [], f"{len(cats)} distinct values > max_categories = {max_categories}", 0
    codes = np.searchsorted(cats, t.to_numpy(dtype=str))
    rows = np.flatnonzero(~missing)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, codes[rows])),
                      shape=(n, len(cats)))
    return m, [f"{name}={c}" for c in cats], None, 0


def _features(value: str, key_ref: str | int | None, default_key: str, ids: np.ndarray, what: str,
              cfg: FilesConfig, ctx: LoadContext) -> tuple[FeatureTable, dict[str, Any]]:
    setting = f"{what}_features"
    path = resolve_path(value, ctx, setting)
    table = open_table(path, "auto", None, True, ())
    key_pos = table.column(key_ref if key_ref is not None else default_key, f"{what}_key")
    table.drop_blank()
    if table.frame.empty:
        raise table.empty_error(f"{what} features")
    keys = _ids(table, key_pos, f"{what}_key")
    records = table.frame.index.to_numpy()
    as_text = keys.dtype.kind != ids.dtype.kind  # e.g. int ids, string keys: compare as text
    key_text = keys.astype(str) if as_text else keys
    dup = pd.Series(key_text).duplicated().to_numpy()
    if dup.any():
        second = _first(dup)
        first = _first(key_text[:second] == key_text[second])
        raise DataError(f"{path}, {table.unit}s {table.line(records[first])} and "
                        f"{table.line(records[second])}: {what} {keys[second]!r} (column "
                        f"{table.names[key_pos]!r}) has two rows; keep one row per {what}")
    row_of = pd.Index(key_text).get_indexer(ids.astype(str) if as_text else ids)
    if (row_of < 0).all():
        raise DataError(f"{path}: none of the {len(ids)} {what}s of the interactions appears in "
                        f"column {table.names[key_pos]!r} (e.g. the interactions have "
                        f"{', '.join(map(repr, ids[:3].tolist()))}; the file has "
                        f"{', '.join(map(repr, keys[:3].tolist()))}). Set {what}_key to the column "
                        f"holding the {what} ids")
    blocks, columns, skipped, filled = [], [], {}, {}
    for pos in range(len(table.names)):
        if pos == key_pos:
            continue
        m, cols, reason, n_filled = _feature_columns(table, pos, cfg.max_categories)
        if m is None:
            skipped[table.names[pos]] = reason
            continue
        blocks.append(m)
        columns.extend(cols)
        if n_filled:
            filled[table.names[pos]] = n_filled
    if not blocks:
        raise DataError(f"{path}: no usable feature column besides the key "
                        f"{table.names[key_pos]!r} (skipped: "
                        f"{'; '.join(f'{k}: {v}' for k, v in skipped.items()) or 'none'}). Add "
                        f"columns, raise max_categories, or drop {setting}")
    m = sp.vstack([sp.hstack(blocks, format="csr"),
                   sp.csr_matrix((1, len(columns)), dtype=np.float32)], format="csr")
    aligned = m[np.where(row_of < 0, m.shape[0] - 1, row_of)]
    values = aligned.toarray() if aligned.shape[0] * aligned.shape[1] <= DENSE_LIMIT else aligned
    meta = {"file": str(path), "key": table.names[key_pos], "columns": len(columns),
            "missing": int((row_of < 0).sum()),
            "ignored_rows": int(len(keys) - (row_of >= 0).sum()),
            "skipped": skipped, "filled_with_zero": filled}
    return FeatureTable(values, tuple(columns)), meta


# ---------------------------------------------------------------- the dataset


def _paths(cfg: FilesConfig, ctx: LoadContext) -> list[Path]:
    paths = [resolve_path(cfg.path, ctx, "path")]
    for key in ("item_features", "user_features"):
        if getattr(cfg, key) is not None:
            paths.append(resolve_path(getattr(cfg, key), ctx, key))
    return paths


def fingerprint(cfg: FilesConfig, ctx: LoadContext) -> str:
    """sha256 over the sha256 digests of the interaction file and the feature files."""
    return digest_bytes(b"".join(file_sha256(p).encode() + b"\x1e" for p in _paths(cfg, ctx)))


def load(cfg: FilesConfig, ctx: LoadContext) -> Dataset:
    path = _paths(cfg, ctx)[0]
    table = open_table(path, cfg.format, cfg.sep, cfg.header, cfg.names)
    pos = {"user": table.column(cfg.user, "user"), "item": table.column(cfg.item, "item")}
    for key in ("rating", "timestamp"):
        p = _optional_column(table, getattr(cfg, key), key)
        if p is not None and not (getattr(cfg, key) is None and p in pos.values()):
            pos[key] = p
    if cfg.rating_range is not None and "rating" not in pos:
        raise DataError(f"{path}: rating_range is set but no rating column is used (the columns "
                        f"are {', '.join(map(repr, table.names))}); set rating to the column "
                        "holding the ratings, or drop rating_range")
    if len(set(pos.values())) < len(pos):
        raise DataError(f"{path}: two config keys name the same column ({pos}); give each of "
                        "user, item, rating and timestamp its own column")
    blank = table.drop_blank()
    if table.frame.empty:
        raise table.empty_error("interactions")
    user = _ids(table, pos["user"], "user")
    item = _ids(table, pos["item"], "item")
    rating = timestamp = None
    if "rating" in pos:
        rating, missing = _numbers(table, pos["rating"], "rating", "ratings",
                                   f"Fix or delete the {table.unit}, or set rating to the column "
                                   "holding the ratings")
        if missing.any():
            raise table.error(table.frame.index[_first(missing)], table.names[pos["rating"]],
                              "the rating is missing (empty or NaN)",
                              f"Fill it in or delete the {table.unit}; for implicit feedback set "
                              'rating = ""', int(missing.sum()))
        if cfg.rating_range is not None:
            lo, hi = cfg.rating_range
            outside = (rating < lo) | (rating > hi)
            if outside.any():
                row = _first(outside)
                raise table.error(table.frame.index[row], table.names[pos["rating"]],
                                  f"rating {rating[row]:g} is outside rating_range "
                                  f"[{lo:g}, {hi:g}]",
                                  f"Fix or delete the {table.unit}, or widen rating_range",
                                  int(outside.sum()))
    if "timestamp" in pos:
        timestamp = _timestamps(table, pos["timestamp"])
    key = pd.DataFrame({"u": user, "i": item})
    if timestamp is not None:
        key["t"] = timestamp
    dup = key.duplicated().to_numpy()
    if dup.any() and cfg.duplicates == "error":
        second = _first(dup)
        same = np.ones(second, bool)
        for c in key.columns:
            same &= key[c].to_numpy()[:second] == key[c].to_numpy()[second]
        records = table.frame.index.to_numpy()
        what = "(user, item, timestamp)" if timestamp is not None else "(user, item)"
        raise DataError(f"{path}, {table.unit}s {table.line(records[_first(same)])} and "
                        f"{table.line(records[second])}: the same {what} = "
                        f"{tuple(key.iloc[second].tolist())} appears twice ({int(dup.sum())} "
                        f"duplicate row{'s' if dup.sum() > 1 else ''} in all); delete the "
                        "duplicates, or set duplicates = \"keep\" (the protocol's "
                        "preprocess.dedup then keeps one row per pair)")
    metadata: dict[str, Any] = {
        "source": str(path), "format": table.fmt,
        "columns": {k: table.names[p] for k, p in pos.items()},
        "duplicate_rows": int(dup.sum()), "blank_lines": blank,
        **({"unterminated_last_line": True} if table.unterminated else {}),
        **({"sep": table.sep} if table.text is not None else {})}
    ds = Dataset.from_arrays("files", user, item, rating, timestamp,
                             checksum="sha256:" + fingerprint(cfg, ctx), metadata=metadata)
    changes: dict[str, Any] = {}
    for what, ids, ref, key_ref in (("item", ds.item_ids, cfg.item_features, cfg.item_key),
                                    ("user", ds.user_ids, cfg.user_features, cfg.user_key)):
        if ref is None:
            continue
        default_key = table.names[pos[what]]
        changes[f"{what}_features"], metadata[f"{what}_features"] = _features(
            ref, key_ref, default_key, ids, what, cfg, ctx)
    return ds.replace(**changes, metadata=metadata) if changes else ds


SPECS: list[DatasetSpec] = [DatasetSpec(
    "files",
    load,
    DatasetCard("Your own data: interactions from a CSV, TSV, Parquet or RecBole .inter file with "
                "a column mapping (user, item, rating, timestamp) and optional item/user feature "
                "files. Set path (and the column names), e.g. -o path=ratings.csv "
                "-o rating=rating.",
                source="a local file (config path)", license="that of your data"),
    FilesConfig,
    fingerprint)]
