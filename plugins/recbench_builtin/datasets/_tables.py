"""Reading the `files` dataset's inputs: locating, decompressing and parsing files into tables.

Private to :mod:`recbench_builtin.datasets.files`; every error names the file and the line.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recbench.api import MISSING_VALUES, DataError, LoadContext, decode_text, did_you_mean, read_bytes

SUFFIXES: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
                            ".pq": "parquet", ".inter": "inter", ".item": "inter", ".user": "inter"}
COMPRESSED: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip")

class PossiblyTruncatedWarning(UserWarning):
    """A text file's last line has no line end: the file may have been cut short."""


# ---------------------------------------------------------------- files


def resolve_path(value: str, ctx: LoadContext, key: str) -> Path:
    """``value`` as an existing file; a missing one is an error listing what its directory holds."""
    path = Path(value).expanduser()
    how = ""
    if not path.is_absolute():
        base = Path(ctx.data_dir) if ctx.data_dir is not None else Path.cwd()
        what = "the data directory" if ctx.data_dir is not None else "the current directory"
        path, how = base / path, f", resolved against {what} {base}"
    if path.is_file():
        return path
    directory = path if path.is_dir() else path.parent
    if directory.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir()
                         if not p.name.startswith("."))
        shown = ", ".join(entries[:20]) + (f", ... ({len(entries)} entries)" if len(entries) > 20
                                           else "")
        found = f"{directory} holds: {shown or 'nothing'}."
        if path.is_dir():
            raise DataError(f"{path} is a directory, not a file (config {key} = {value!r}); "
                            f"{found} Set {key} to one of its files")
        found += did_you_mean(path.name, [e for e in entries if not e.endswith("/")])
    else:
        found = f"The directory {directory} does not exist either."
    raise DataError(f"{path}: no such file (config {key} = {value!r}{how}). {found} Fix {key}, "
                    "or pass --data-dir for relative paths")


def _stem_suffix(path: Path) -> str:
    name = path.name.lower()
    for c in COMPRESSED:
        if name.endswith(c):
            name = name[: -len(c)]
    return Path(name).suffix


def _format(path: Path, data: bytes, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    by_suffix = SUFFIXES.get(_stem_suffix(path))
    if by_suffix:
        return by_suffix
    if data[:4] == b"PAR1":
        return "parquet"
    first = data[:4096].split(b"\n", 1)[0]
    if re.search(rb"[^\t:]+:(token|token_seq|float|float_seq)(\t|\r|$)", first):
        return "inter"
    return "csv"


def _decode(data: bytes, path: Path) -> str:
    try:
        return decode_text(data)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def _separator(sep: str | None, fmt: str, first_line: str) -> str:
    if sep is not None:
        return "\t" if sep in ("\\t", "tab") else sep
    if fmt in ("tsv", "inter"):
        return "\t"
    counts = {c: first_line.count(c) for c in (",", ";", "\t", "|")}
    best = max(counts, key=lambda c: counts[c])  # first of the maxima: the comma on ties
    return best if counts[best] else ","


# ---------------------------------------------------------------- tables


@dataclass
class Table:
    """A parsed file: ``frame`` has columns ``0..n-1`` (named ``names``), text or typed values,
    indexed by data record (0 = the first record after the header); rows may be dropped, the index
    keeps the record numbers for error messages."""

    path: Path
    frame: pd.DataFrame
    names: list[str]
    types: dict[str, str] = field(default_factory=dict)  # RecBole declared types
    text: str | None = None  # None: Parquet
    sep: str = ","
    quoting: int = csv.QUOTE_MINIMAL
    header: bool = True
    fmt: str = "csv"
    unterminated: bool = False  # the last line has no line end: possibly truncated

    @property
    def unit(self) -> str:
        return "line" if self.text is not None else "row"

    def line(self, record: int) -> int:
        """1-based line (header = line 1) of data record ``record``; the row for Parquet."""
        if self.text is None:
            return record + 1
        target = record + int(self.header)
        if self.quoting == csv.QUOTE_NONE or len(self.sep) != 1 or '"' not in self.text:
            return target + 1
        for number, (start, _) in enumerate(_records(self.text, self.sep, self.quoting)):
            if number == target:
                return start
        return target + 1

    def error(self, record: int, column: str | None, problem: str, fix: str,
              count: int = 1) -> DataError:
        where = f"{self.path}, {self.unit} {self.line(record)}"
        if column is not None:
            where += f", column {column!r}"
        more = f"; {count} such {self.unit}s" if count > 1 else ""
        shown = ""
        if self.text is not None:
            lines = self.text.split("\n")
            number = self.line(record)
            if number <= len(lines):
                shown = f"; the line reads {lines[number - 1].rstrip(chr(13))[:120]!r}"
        return DataError(f"{where}: {problem}{more}{shown}. {fix}")

    def column(self, ref: str | int, key: str) -> int:
        """Position of the column ``ref`` (a name or a 0-based position) given as config ``key``."""
        shown = ", ".join(repr(n) for n in self.names)
        if isinstance(ref, int):
            if ref < len(self.names):
                return ref
            raise DataError(f"{self.path}: {key} = {ref} but the file has {len(self.names)} "
                            f"columns (positions 0-{len(self.names) - 1}: {shown}); fix {key}")
        hits = [i for i, n in enumerate(self.names) if n == ref]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise DataError(f"{self.path}, line 1: the header names column {ref!r} {len(hits)} "
                            f"times (config {key}); rename one, or choose by position: "
                            f"{key} = {hits[0]}")
        hint = ""
        if not self.header and self.text is not None:
            hint = (" The file is read without a header (header = false), so its columns are named "
                    "by position; use those names, a position (e.g. user = 0), or set names.")
        elif self.text is not None and self.names and all(_looks_numeric(n) for n in self.names):
            hint = " The first line looks like data, not a header: set header = false."
        elif len(self.names) == 1 and self.text is not None:
            hint = (f" The file has a single column: is the separator right? (read with "
                    f"{self.sep!r}; set sep)")
        source = "the header" if self.header else "the file"
        raise DataError(f"{self.path}: column {ref!r} (config {key}) is not in {source}; the "
                        f"columns are {shown or 'none'}.{did_you_mean(ref, self.names)}{hint} Set "
                        f"{key} to the right column")

    def drop_blank(self) -> int:
        """Drop records whose fields are all empty (blank lines); returns how many."""
        if self.text is None or self.frame.empty:
            return 0
        blank = np.ones(len(self.frame), bool)
        for c in self.frame.columns:
            s = self.frame[c]
            empty = np.array(s.isna().to_numpy(), dtype=bool)
            if pd.api.types.is_string_dtype(s) or s.dtype == object:
                rows = np.flatnonzero(blank & ~empty)
                empty[rows] = s.iloc[rows].astype(str).str.strip().eq("").to_numpy()
            blank &= empty
            if not blank.any():
                return 0
        self.frame = self.frame[~blank]
        return int(blank.sum())

    def empty_error(self, what: str) -> DataError:
        lead = ("has a header (line 1) but no data lines" if self.header and self.text is not None
                else "holds no data rows")
        return DataError(f"{self.path} {lead}: it holds no {what}. Point the config at the right "
                         "file, or fill this one")


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _records(text: str, sep: str, quoting: int) -> Any:
    """(start line, fields) per record of ``text``, for error messages (a plain, slow scan)."""
    if len(sep) != 1:
        for number, line in enumerate(text.split("\n"), 1):
            yield number, line.rstrip("\r").split(sep)
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


def _text_table(path: Path, data: bytes, fmt: str, sep: str | None, header: bool,
                names: tuple[str, ...]) -> Table:
    text = _decode(data, path)
    if not text.strip():
        raise DataError(f"{path} is empty ({len(data)} bytes, no data): point the config at the "
                        "right file, or fill this one")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    sep = _separator(sep, fmt, first_line)
    quoting = csv.QUOTE_NONE if fmt == "inter" else csv.QUOTE_MINIMAL
    first_fields = next(f for _, f in _records(first_line, sep, quoting)) if first_line else [""]
    types: dict[str, str] = {}
    if header:
        heads = [f.strip() for f in first_fields]
        if fmt == "inter":
            split = [h.rpartition(":") if ":" in h else (h, "", "") for h in heads]
            heads = [n for n, _, _ in split]
            types = {n: t for n, _, t in split if t}
        if names and len(names) != len(heads):
            raise DataError(f"{path}, line 1: the header has {len(heads)} columns "
                            f"({', '.join(heads)}) but names gives {len(names)}; give one name "
                            "per column")
        col_names = list(names) or heads
    else:
        if names and len(names) != len(first_fields):
            raise DataError(f"{path}, line 1: the line has {len(first_fields)} fields but names "
                            f"gives {len(names)}; give one name per column")
        col_names = list(names) or [str(i) for i in range(len(first_fields))]
    # Types inferred by the C parser (fast); nullable dtypes keep integer ids exact next to a
    # missing value. Text columns keep their strings; MISSING spellings become NA.
    kwargs: dict[str, Any] = dict(header=None, keep_default_na=False, na_values=sorted(MISSING_VALUES),
                                  skip_blank_lines=False, skiprows=1 if header else 0,
                                  quoting=quoting, low_memory=False, dtype_backend="numpy_nullable")
    body = text
    if len(sep) == 1:
        kwargs.update(sep=sep, engine="c")
    elif "\x1f" not in text:  # a literal multi-character separator ("::"): the fast C parser
        body = text.replace(sep, "\x1f")
        kwargs.update(sep="\x1f", engine="c", quoting=csv.QUOTE_NONE)
    else:
        kwargs.update(sep=re.escape(sep), engine="python")
    table = Table(path, pd.DataFrame(columns=range(len(col_names)), dtype=str), col_names, types,
                   text, sep, quoting, header, fmt, unterminated=not text.endswith(("\n", "\r")))
    if table.unterminated:
        last = text.count("\n") + 1
        warnings.warn(f"{path}, line {last}: the last line has no line end, so the file may be "
                      f"truncated (an interrupted copy or download); it reads "
                      f"{text.rsplit(chr(10), 1)[-1][:120]!r}. Check it against the source, or "
                      "end the file with a newline to silence this", PossiblyTruncatedWarning,
                      stacklevel=2)
    if header and "\n" not in text.rstrip("\r\n"):
        return table  # a header and nothing else
    try:
        with warnings.catch_warnings():
            # a first record longer than the header: pandas would drop fields with a warning
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(body), names=range(len(col_names)), index_col=False,
                                **kwargs)
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning, csv.Error) as e:
        raise _bad_shape(table, len(col_names), e) from None
    table.frame = frame
    return table


def _bad_shape(table: Table, n: int, error: Exception | None) -> DataError:
    assert table.text is not None
    for number, fields in _records(table.text, table.sep, table.quoting):
        if len(fields) > n:
            line = table.text.split("\n")[number - 1].rstrip("\r")[:120]
            return DataError(f"{table.path}, line {number}: {len(fields)} fields where "
                             f"{'the header names' if table.header else 'line 1 has'} {n} "
                             f"(separator {table.sep!r}); the line reads {line!r}. Fix the line "
                             "(quote fields that hold the separator), or set sep")
    return DataError(f"{table.path}: cannot be parsed as {table.fmt} with separator {table.sep!r} "
                     f"({error}); check format and sep")


def _parquet_table(path: Path, data: bytes, names: tuple[str, ...]) -> Table:
    for engine in ("pyarrow", "fastparquet"):
        try:
            importlib.import_module(engine)
            break
        except ImportError:
            continue
    else:
        raise DataError(f"{path}: reading Parquet needs pyarrow, which is not installed: "
                        "`pip install pyarrow` (fastparquet works too), or convert the file to CSV")
    try:
        with warnings.catch_warnings():  # pandas 3 deprecates fastparquet; it still reads fine
            warnings.filterwarnings("ignore", message=".*fastparquet.*deprecated")
            frame = pd.read_parquet(io.BytesIO(data), engine=engine)
    except Exception as e:  # noqa: BLE001 - every engine raises its own types
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e}); check the "
                        "file, or set format to csv/tsv/inter if it is text") from None
    col_names = [str(c) for c in frame.columns]
    if names:
        if len(names) != len(col_names):
            raise DataError(f"{path}: the file has {len(col_names)} columns "
                            f"({', '.join(col_names)}) but names gives {len(names)}; give one "
                            "name per column")
        col_names = list(names)
    frame = frame.reset_index(drop=True)
    frame.columns = range(len(col_names))
    return Table(path, frame, col_names, header=True, fmt="parquet")


def open_table(path: Path, fmt: str, sep: str | None, header: bool, names: tuple[str, ...]) -> Table:
    data = read_bytes(path)
    fmt = _format(path, data, fmt)
    if fmt == "parquet":
        if not data:
            raise DataError(f"{path} is empty (0 bytes): point the config at the right file")
        return _parquet_table(path, data, names)
    if fmt == "inter" and not header:
        raise DataError(f"{path}: RecBole files always have a `name:type` header; drop "
                        "header = false, or set format to tsv")
    return _text_table(path, data, fmt, sep, header, names)
