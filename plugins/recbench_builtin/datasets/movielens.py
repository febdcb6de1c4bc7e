"""MovieLens (GroupLens): ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m and ml-latest-small.

Where the files come from, in this order:

1. ``path=`` (config key): a directory holding the extracted release (the directory itself, or its
   ``<name>``/archive-folder subdirectory). Nothing is downloaded.
2. ``LoadContext.data_dir`` (the CLI's ``--data-dir``): ``data_dir/<name>`` (or the archive's folder
   name, e.g. ``ml-10M100K``), then ``data_dir`` itself. A folder found there must be complete.
3. The download folder the harness chose (:func:`recbench.download.download_dir`: ``data_dir`` when
   given, else ``cache_dir/downloads``), under ``movielens/``: the official zip is fetched once from
   files.grouplens.org, verified against the checksums recorded in :data:`ARCHIVES` and extracted
   safely; later loads read the extracted copy and never touch the network.

What is parsed: ratings with timestamps (ML-1M also accepts the timestamp-less
``ratings_uir.dat[.gz]`` layout); item features in one dense table: multi-hot genres, the release year
(``year``, missing years filled with the median and flagged in ``year_missing``); titles, in item
order, in ``Dataset.item_info["title"]`` for text models; user features for 100K and 1M: ``age``
(1M: the README's age-bucket code), ``gender_M`` (1 = male), one-hot occupation and ``zip_prefix``
(the first digit of the zip code; -1 when it is not a digit, e.g. Canadian postal codes).
Items and users keep their original MovieLens ids (``Dataset.item_ids``/``user_ids``); only rated
items appear. ``Dataset.checksum`` is ``sha256:`` + the sha256 of the (decompressed) ratings file, so a
local copy and a download of the same release agree. Files are read, decoded and hashed with
:mod:`recbench.fileio` (one encoding rule, one set of missing-value spellings).

Bad input gets a :class:`DataError` naming the file, the line and the column: non-numeric fields,
wrong field counts, NaN or out-of-scale ratings, negative or future timestamps, duplicate
(user, movie) pairs, empty files, rated movies or users missing from the side files.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recbench.api import (
    MISSING_VALUES,
    check,
    DataError,
    Dataset,
    DatasetCard,
    DatasetSpec,
    decode_text,
    digest_bytes,
    download_dir,
    extract,
    FeatureTable,
    fetch,
    file_sha256,
    LoadContext,
    read_bytes,
    text_encoding,
)

BASE_URL = "https://files.grouplens.org/datasets/movielens"
CITATION = ("F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and "
            "Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19. "
            "https://doi.org/10.1145/2827872")
BIBTEX = r"""@article{harper2015movielens,
  author  = {Harper, F. Maxwell and Konstan, Joseph A.},
  title   = {The {MovieLens} Datasets: History and Context},
  journal = {ACM Transactions on Interactive Intelligent Systems},
  volume  = {5}, number = {4}, articleno = {19}, year = {2015},
  doi     = {10.1145/2827872}
}"""


@dataclass(frozen=True)
class Archive:
    """Where a release's zip lives and how to check it. ``md5`` is the digest GroupLens publishes
    next to each zip (``<url>.md5``); ``sha256`` is the digest of the same bytes. ``fetch`` verifies
    every digest recorded here and refuses a release that has none."""

    url: str
    sha256: str | None = None
    md5: str | None = None


# md5: GroupLens's published <zip>.md5 files, as quoted by independent download code (TFDS-style
# configs, NVIDIA's NCF verify script, pooch registries). sha256: the digest of those same zips as
# pinned by several independent projects, and for 100K/1M/10M/20M/25M/32M cross-checked there against
# the published md5. ml-latest-small has no md5 on record here; GroupLens has not changed that zip
# since its 2018-09-26 snapshot, but calls it a "development" release that may change: if it does,
# the mismatch error says what to do.
ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive(f"{BASE_URL}/ml-100k.zip",
                       sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                       md5="0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": Archive(f"{BASE_URL}/ml-1m.zip",
                     sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                     md5="c4d9eecfca2ab87c1945afe126590906"),
    "ml-10m": Archive(f"{BASE_URL}/ml-10m.zip",
                      sha256="813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
                      md5="ce571fd55effeba0271552578f2648bd"),
    "ml-20m": Archive(f"{BASE_URL}/ml-20m.zip",
                      sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                      md5="cd245b17a1ae2cc31bb14903e1204af3"),
    "ml-25m": Archive(f"{BASE_URL}/ml-25m.zip",
                      sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                      md5="6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-32m": Archive(f"{BASE_URL}/ml-32m.zip",
                      sha256="e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
                      md5="d472be332d4daa821edc399621853b57"),
    "ml-latest-small": Archive(
        f"{BASE_URL}/ml-latest-small.zip",
        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
}

# ---------------------------------------------------------------- releases and their files

_LAYOUT_FILES: dict[str, dict[str, Any]] = {
    # ratings: accepted names, first found wins; items/users: the side files (users: 100K/1M only)
    "100k": {"ratings": ("u.data",), "items": "u.item", "users": "u.user"},
    "1m": {"ratings": ("ratings.dat", "ratings.dat.gz", "ratings_uir.dat", "ratings_uir.dat.gz"),
           "items": "movies.dat", "users": "users.dat"},
    "10m": {"ratings": ("ratings.dat", "ratings.dat.gz"), "items": "movies.dat", "users": None},
    "csv": {"ratings": ("ratings.csv", "ratings.csv.gz"), "items": "movies.csv", "users": None},
}

_NO_REDISTRIBUTION = ("GroupLens terms: research use only; acknowledge the data set (cite the "
                      "paper); no redistribution without separate permission; no commercial or "
                      "revenue-bearing use without permission; no implied endorsement. See the "
                      "release's README.")
_REDISTRIBUTION_OK = ("GroupLens terms: research use only; acknowledge the data set (cite the "
                      "paper); redistribution, including transformations, allowed only under the "
                      "same terms; no commercial or revenue-bearing use without permission; no "
                      "implied endorsement. See the release's README.")


@dataclass(frozen=True)
class Release:
    name: str
    layout: str  # "100k" | "1m" | "10m" | "csv"
    folder: str  # the top-level directory inside the official zip
    summary: str
    license: str
    rating_scale: tuple[float, float]

    @property
    def files(self) -> dict[str, Any]:
        return _LAYOUT_FILES[self.layout]


RELEASES: dict[str, Release] = {r.name: r for r in (
    Release("ml-100k", "100k", "ml-100k",
            "MovieLens 100K (1998): 100,000 ratings (1-5 stars) from 943 users on 1,682 movies, "
            "1997-09 to 1998-04, with timestamps, 19 genres, release dates and user demographics "
            "(age, gender, occupation, zip).", _NO_REDISTRIBUTION, (1.0, 5.0)),
    Release("ml-1m", "1m", "ml-1m",
            "MovieLens 1M (2003): 1,000,209 ratings (1-5 stars) from 6,040 users on 3,706 movies "
            "(3,883 listed), with timestamps, 18 genres, titles with year and user demographics "
            "(age bucket, gender, occupation, zip). A local copy without timestamps is accepted.",
            _NO_REDISTRIBUTION, (1.0, 5.0)),
    Release("ml-10m", "10m", "ml-10M100K",
            "MovieLens 10M (2009): 10,000,054 half-star ratings and 95,580 tags on 10,681 movies "
            "by 71,567 users (README counts), with timestamps, genres and titles with year; no "
            "demographics.",
            _NO_REDISTRIBUTION, (0.5, 5.0)),
    Release("ml-20m", "csv", "ml-20m",
            "MovieLens 20M (2015, links updated 2016): 20,000,263 half-star ratings across 27,278 "
            "movies by 138,493 users (README counts), with timestamps, genres and titles with year.",
            _REDISTRIBUTION_OK, (0.5, 5.0)),
    Release("ml-25m", "csv", "ml-25m",
            "MovieLens 25M (2019): 25,000,095 half-star ratings across 62,423 movies by 162,541 "
            "users (README counts), with timestamps, genres and titles with year.",
            _REDISTRIBUTION_OK, (0.5, 5.0)),
    Release("ml-32m", "csv", "ml-32m",
            "MovieLens 32M (generated 2023-10, released 2024): 32,000,204 half-star ratings "
            "across 87,585 movies by 200,948 users (README counts), with timestamps, genres and "
            "titles with year.",
            _REDISTRIBUTION_OK, (0.5, 5.0)),
    Release("ml-latest-small", "csv", "ml-latest-small",
            "MovieLens latest-small (2018-09 snapshot): 100,836 half-star ratings from 610 users on "
            "9,724 movies (9,742 listed), with timestamps, genres and titles with year. GroupLens "
            "calls it a development set that may change; prefer a fixed release for papers.",
            _REDISTRIBUTION_OK, (0.5, 5.0)),
)}

# The 100K genre order (u.genre) and the 1M occupation codes (README), used when the file is absent.
GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western")
OCCUPATIONS_1M = ("other", "academic/educator", "artist", "clerical/admin",
                  "college/grad student", "customer service", "doctor/health care",
                  "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
                  "programmer", "retired", "sales/marketing", "scientist", "self-employed",
                  "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
NO_GENRE = "(no genres listed)"


@dataclass(frozen=True)
class MovieLensConfig:
    """``path``: a directory with the extracted release (offline use); otherwise ``--data-dir`` or
    the verified download cache."""

    path: str | None = None

    def __post_init__(self) -> None:
        check(self.path is None or bool(self.path.strip()),
              "path must name a directory holding the extracted release, got an empty string")


# ---------------------------------------------------------------- locating the files


@dataclass(frozen=True)
class _Files:
    directory: Path
    ratings: Path
    items: Path
    users: Path | None

    def all(self) -> list[Path]:
        return [p for p in (self.ratings, self.items, self.users) if p is not None]


def _ratings_file(release: Release, directory: Path) -> Path | None:
    for name in release.files["ratings"]:
        if (directory / name).is_file():
            return directory / name
    return None


def _complete(release: Release, directory: Path, how: str) -> _Files:
    """The release's files in ``directory``; a missing one is an error saying what to do."""
    ratings = _ratings_file(release, directory)
    wanted = [" or ".join(release.files["ratings"]), release.files["items"]]
    if release.files["users"]:
        wanted.append(release.files["users"])
    missing = [] if ratings else [wanted[0]]
    items = directory / release.files["items"]
    users = directory / release.files["users"] if release.files["users"] else None
    missing += [p.name for p in (items, users) if p is not None and not p.is_file()]
    if missing:
        fix = (f"Delete {directory} and load again: it is re-extracted from the verified archive"
               if how == "download cache" else
               "Copy the complete extracted release there, or point `path`/--data-dir elsewhere "
               "(without either, recbench downloads the release)")
        raise DataError(f"{release.name}: {directory} ({how}) lacks {', '.join(missing)}; a "
                        f"{release.name} copy needs {', '.join(wanted)}. {fix}")
    assert ratings is not None
    return _Files(directory, ratings, items, users)


_README_RELEASE = re.compile(r"This dataset \((ml-[A-Za-z0-9-]+)\)")


def _names_other_release(release: Release, directory: Path) -> bool:
    """True when the directory's README says it holds a different MovieLens release."""
    for readme in ("README.txt", "README.html", "README"):
        p = directory / readme
        if p.is_file():
            m = _README_RELEASE.search(p.read_text("utf-8", errors="replace")[:4000])
            if m and m.group(1).lower() != release.name:
                return True
    return False


def _candidates(release: Release, base: Path) -> list[Path]:
    names = dict.fromkeys([release.name, release.folder])  # ordered, deduplicated
    return [base / n for n in names]


def _locate(release: Release, cfg: MovieLensConfig, ctx: LoadContext) -> tuple[_Files, str]:
    """The release's files and where they came from (``path``, ``data_dir`` or ``download``)."""
    if cfg.path is not None:
        base = Path(cfg.path).expanduser()
        if not base.is_dir():
            raise DataError(f"{release.name}: path={cfg.path!r} is not a directory; point it at the "
                            f"extracted {release.name} release (or drop it to download)")
        for d in [base, *_candidates(release, base)]:
            if _ratings_file(release, d):
                return _complete(release, d, "path="), "path"
        return _complete(release, base, "path="), "path"  # raises: names the missing files
    if ctx.data_dir is not None:
        base = Path(ctx.data_dir).expanduser()
        if not base.is_dir():
            raise DataError(f"{release.name}: --data-dir {base} is not a directory; create it or "
                            f"point it at the folder that holds your dataset copies")
        for d in _candidates(release, base):
            if d.is_dir():
                return _complete(release, d, "--data-dir"), "data_dir"
        if _ratings_file(release, base) and not _names_other_release(release, base):
            return _complete(release, base, "--data-dir"), "data_dir"
        looked = ", ".join(str(p) for p in [*_candidates(release, base), base])
        try:
            return _download(release, ctx), "download"
        except DataError as e:
            raise DataError(f"{release.name} is not in --data-dir (looked in {looked}) and the "
                            f"download failed: {e}") from None
    return _download(release, ctx), "download"


def _download(release: Release, ctx: LoadContext) -> _Files:
    """The extracted release from the download folder, fetching and verifying the zip the first
    time."""
    root = download_dir(ctx) / "movielens"
    extracted = root / release.name
    for d in [extracted, *_candidates(release, extracted)]:
        if d.is_dir() and _ratings_file(release, d):
            return _complete(release, d, "download cache")
    archive = ARCHIVES.get(release.name)
    if archive is None or not (archive.sha256 or archive.md5):
        url = archive.url if archive else f"{BASE_URL}/{release.name}.zip"
        raise DataError(f"{release.name}: no recorded checksum for {url}, so recbench will not "
                        f"download it unverified. Download it manually, check it, extract it, and "
                        f"pass path=<extracted directory> (or --data-dir)")
    zip_path = fetch(archive.url, archive.sha256, root, md5=archive.md5,
                     filename=f"{release.name}.zip")
    # Replace only a damaged earlier extraction; a concurrent loader's finished one is kept.
    extract(zip_path, extracted, overwrite=extracted.exists())
    for d in [extracted, *_candidates(release, extracted)]:
        if d.is_dir() and _ratings_file(release, d):
            return _complete(release, d, "download cache")
    raise DataError(f"{release.name}: {zip_path} passed its checksum but holds no "
                    f"{' or '.join(release.files['ratings'])}; the recorded checksum belongs to "
                    f"another file. Fix ARCHIVES[{release.name!r}]")


# ---------------------------------------------------------------- reading files

def _content_sha256(path: Path) -> str:
    """sha256 of the file's content (decompressed for ``.gz``), remembered per (path, size,
    mtime) so a fingerprint and the parse that follows hash a large file once."""
    return file_sha256(path, decompressed=True)


_encoding = text_encoding
_decode = decode_text


def _lines(data: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in data.split(b"\n")]


def _line_of_row(data: bytes, row: int, skip: int) -> int:
    """1-based line number of parsed row ``row`` (blank lines are skipped by the parser)."""
    seen = -1
    for number, line in enumerate(_lines(data), 1):
        if number <= skip or not line.strip():
            continue
        seen += 1
        if seen == row:
            return number
    return -1


_KINDS = {"int": (int, "an integer (64-bit)"), "float": (float, "a number"), "str": (str, "text")}


def _bad_line(path: Path, data: bytes, sep: bytes, shown_sep: str, columns: dict[str, str],
              skip: int, error: Exception) -> DataError:
    """Find the first line the parser rejected, by a plain scan (only runs after a parse error)."""
    names = list(columns)
    for number, line in enumerate(_lines(data), 1):
        if number <= skip or not line.strip():
            continue
        fields = line.split(sep)
        text = line.replace(sep, shown_sep.encode()).decode("latin-1")
        if len(fields) != len(names):
            return DataError(f"{path}, line {number}: expected {len(names)} fields "
                             f"({', '.join(names)}) separated by {shown_sep!r}, found "
                             f"{len(fields)}: {text[:100]!r}. Fix or delete the line, or replace "
                             f"the file with the release's original")
        for name, field in zip(names, fields):
            parse, what = _KINDS[columns[name]]
            if parse is str:
                continue
            try:
                value = parse(field)
                if parse is int and not -2**63 <= value < 2**63:
                    raise ValueError("out of the 64-bit range")
            except ValueError:
                return DataError(f"{path}, line {number}, column {name!r}: "
                                 f"{field.decode('latin-1')!r} is not {what}. Fix or delete the "
                                 f"line, or replace the file with the release's original")
    return DataError(f"{path} could not be parsed ({error}); replace it with the release's "
                     f"original file")


_NA = sorted(MISSING_VALUES)


def _read_table(path: Path, data: bytes, sep: bytes, shown_sep: str, columns: dict[str, str],
                skip: int = 0, encoding: str = "latin-1") -> pd.DataFrame:
    """Parse ``sep``-separated ``data`` with explicit dtypes; errors name the file and line.

    Text columns keep every value as written (a title "NA" stays "NA"); in numeric columns the
    usual NaN spellings become NaN, which the callers report with the line number.
    """
    dtypes = {"int": "int64", "float": "float64", "str": "str"}
    try:
        return pd.read_csv(io.BytesIO(data), sep=sep.decode(), header=None, names=list(columns),
                           dtype={k: dtypes[v] for k, v in columns.items()}, skiprows=skip,
                           engine="c", quoting=csv.QUOTE_NONE, keep_default_na=False,
                           na_values={k: _NA for k, v in columns.items() if v != "str"},
                           encoding=encoding)
    except (ValueError, OverflowError) as e:  # pandas.errors.ParserError is a ValueError
        raise _bad_line(path, data, sep, shown_sep, columns, skip, e) from None


# ---------------------------------------------------------------- ratings


def _parse_ratings(release: Release, path: Path) -> tuple[dict[str, np.ndarray], str]:
    data = read_bytes(path)
    sha = _content_sha256(path)
    if not data.strip():
        raise DataError(f"{path} is empty: it holds no ratings. Replace it with the release's "
                        f"original file (or delete the folder to download it again)")
    skip = 0
    if release.layout == "100k":
        sep, shown = b"\t", "\\t"
    elif release.layout in ("1m", "10m"):
        data, sep, shown = data.replace(b"::", b"\t"), b"\t", "::"
    else:
        sep, shown, skip = b",", ",", 1
        header = data.split(b"\n", 1)[0].strip()
        if not header or header[:1].isdigit():
            raise DataError(f"{path}, line 1: expected the header userId,movieId,rating,timestamp, "
                            f"found {header[:60].decode('latin-1')!r}. Restore the header line")
    columns = {"user": "int", "item": "int", "rating": "float", "timestamp": "int"}
    if release.layout == "1m":  # ratings_uir.dat has no timestamp column: take the first line's count
        first = next((line for line in _lines(data) if line.strip()), b"")
        if first.count(sep) == 2:
            del columns["timestamp"]
    frame = _read_table(path, data, sep, shown, columns, skip, encoding=_encoding(data))
    if frame.empty:
        raise DataError(f"{path} holds no ratings (only blank lines or a header). Replace it with "
                        f"the release's original file")
    out = {k: frame[k].to_numpy() for k in columns}
    _check_ratings(release, path, data, skip, out)
    return out, sha


def _check_ratings(release: Release, path: Path, data: bytes, skip: int,
                   cols: dict[str, np.ndarray]) -> None:
    def fail(row: int, column: str, problem: str, fix: str) -> None:
        line = _line_of_row(data, row, skip)
        raise DataError(f"{path}, line {line}, column {column!r}: {problem}. {fix}")

    fix = "Fix or delete the line, or replace the file with the release's original"
    for col in ("user", "item"):
        bad = np.flatnonzero(cols[col] < 0)
        if len(bad):
            fail(int(bad[0]), col, f"negative id {cols[col][bad[0]]}", fix)
    rating = cols["rating"]
    bad = np.flatnonzero(~np.isfinite(rating))
    if len(bad):
        fail(int(bad[0]), "rating", "the rating is missing or NaN", fix)
    lo, hi = release.rating_scale
    bad = np.flatnonzero((rating < lo) | (rating > hi))
    if len(bad):
        fail(int(bad[0]), "rating", f"rating {rating[bad[0]]:g} is outside the {release.name} "
             f"scale {lo:g}-{hi:g}", fix)
    if "timestamp" in cols:
        ts = cols["timestamp"]
        bad = np.flatnonzero(ts < 0)
        if len(bad):
            fail(int(bad[0]), "timestamp", f"negative timestamp {ts[bad[0]]}", fix)
        now = int(time.time()) + 86_400
        bad = np.flatnonzero(ts > now)
        if len(bad):
            fail(int(bad[0]), "timestamp", f"timestamp {ts[bad[0]]} lies in the future (unix "
                 f"seconds expected; milliseconds?)", fix)
    user, item = cols["user"], cols["item"]
    if int(user.max()) < 2**62 // (int(item.max()) + 1):  # one int64 key per pair: fast
        key = user.astype(np.int64) * (int(item.max()) + 1) + item
        dup = pd.Series(key).duplicated().to_numpy()
    else:
        key = pd.MultiIndex.from_arrays([user, item]).codes  # never reached by real MovieLens ids
        key = key[0].astype(np.int64) * (int(key[1].max()) + 1) + key[1]
        dup = pd.Series(key).duplicated().to_numpy()
    if dup.any():
        second = int(np.argmax(dup))
        first = int(np.flatnonzero(key[:second] == key[second])[0])
        lines = (_line_of_row(data, first, skip), _line_of_row(data, second, skip))
        raise DataError(f"{path}, lines {lines[0]} and {lines[1]}: user {user[second]} rated movie "
                        f"{item[second]} twice; a MovieLens release has one rating per pair, so "
                        f"the file is damaged. Delete one of the lines, or replace the file with the "
                        f"release's original")


# ---------------------------------------------------------------- side files

_YEAR = r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$"


def _unique_ids(path: Path, data: bytes, ids: np.ndarray, skip: int, what: str) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        row = int(np.argmax(dup))
        raise DataError(f"{path}, line {_line_of_row(data, row, skip)}: {what} id {ids[row]} "
                        f"appears twice. Delete the duplicate line, or replace the file with the "
                        f"release's original")


def _parse_items(release: Release, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Per movie id: genre flags (``genre_<name>``) and ``year``; plus the genre names."""
    data = read_bytes(path)
    if not data.strip():
        raise DataError(f"{path} is empty; replace it with the release's original file")
    skip = 0
    if release.layout == "100k":
        genres = list(GENRES_100K)
        genre_file = path.with_name("u.genre")
        if genre_file.is_file():
            rows = [ln.split("|") for ln in _decode(genre_file.read_bytes()).splitlines()]
            named = [r[0] for r in sorted((r for r in rows if len(r) == 2 and r[1].strip().isdigit()),
                                          key=lambda r: int(r[1]))]
            if len(named) == len(GENRES_100K):
                genres = named
        columns = {"item": "int", "title": "str", "release": "str", "video": "str", "url": "str",
                   **{f"genre_{g}": "int" for g in genres}}
        frame = _read_table(path, data, b"|", "|", columns, encoding=_encoding(data))
        flags = frame[[f"genre_{g}" for g in genres]]
        bad = np.flatnonzero(~flags.isin([0, 1]).all(axis=1).to_numpy())
        if len(bad):
            raise DataError(f"{path}, line {_line_of_row(data, int(bad[0]), 0)}: genre flags must "
                            f"be 0 or 1. Replace the file with the release's original")
        year = pd.to_numeric(frame["release"].str.strip().str[-4:], errors="coerce")
        year = year.fillna(pd.to_numeric(frame["title"].str.extract(_YEAR)[0], errors="coerce"))
        table = flags.astype(np.float32)
    else:
        if release.layout in ("1m", "10m"):
            data, sep, shown = data.replace(b"::", b"\t"), b"\t", "::"
            frame = _read_table(path, data, sep, shown,
                                {"item": "int", "title": "str", "genres": "str"},
                                encoding=_encoding(data))
        else:
            skip = 1
            try:
                frame = pd.read_csv(io.BytesIO(data), dtype={"movieId": "int64", "title": "str",
                                                             "genres": "str"},
                                    keep_default_na=False, encoding=_encoding(data))
            except (ValueError, UnicodeDecodeError) as e:
                raise DataError(f"{path} could not be parsed as movieId,title,genres CSV ({e}); "
                                f"replace it with the release's original file") from None
            if list(frame.columns) != ["movieId", "title", "genres"]:
                raise DataError(f"{path}, line 1: expected the header movieId,title,genres, found "
                                f"{','.join(map(str, frame.columns))!r}. Restore the header line")
            frame = frame.rename(columns={"movieId": "item"})
        dummies = frame["genres"].str.get_dummies(sep="|")
        dummies = dummies.drop(columns=[c for c in dummies.columns if c in (NO_GENRE, "")])
        genres = sorted(dummies.columns)
        table = dummies[genres].rename(columns=lambda g: f"genre_{g}").astype(np.float32)
        year = pd.to_numeric(frame["title"].str.extract(_YEAR)[0], errors="coerce")
    ids = frame["item"].to_numpy()
    _unique_ids(path, data, ids, skip, "movie")
    table = table.copy()
    table["year"] = year.to_numpy(dtype=np.float64)
    table.index = ids
    table["title"] = frame["title"].str.strip().to_numpy()
    return table, genres


def _parse_users(release: Release, path: Path) -> pd.DataFrame:
    """Per user id: ``age``, ``gender_M``, ``occupation_<name>`` one-hot, ``zip_prefix``."""
    data = read_bytes(path)
    if not data.strip():
        raise DataError(f"{path} is empty; replace it with the release's original file")
    if release.layout == "100k":
        columns = {"user": "int", "age": "int", "gender": "str", "occupation": "str", "zip": "str"}
        frame = _read_table(path, data, b"|", "|", columns, encoding=_encoding(data))
        occ_file = path.with_name("u.occupation")
        if occ_file.is_file():
            names = [s.strip() for s in _decode(occ_file.read_bytes()).splitlines()
                     if s.strip()]
        else:
            names = sorted(frame["occupation"].unique())
        codes = frame["occupation"].map({n: i for i, n in enumerate(names)})
    else:
        columns = {"user": "int", "gender": "str", "age": "int", "occupation": "int", "zip": "str"}
        frame = _read_table(path, data.replace(b"::", b"\t"), b"\t", "::", columns,
                            encoding=_encoding(data))
        names = list(OCCUPATIONS_1M)
        codes = frame["occupation"].where(frame["occupation"].between(0, len(names) - 1))
    bad = np.flatnonzero(codes.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{path}, line {_line_of_row(data, row, 0)}, column 'occupation': unknown "
                        f"occupation {frame['occupation'].iloc[row]!r} (known: "
                        f"{', '.join(map(str, names))}). Fix the line or restore the original file")
    gender = frame["gender"].str.strip().map({"M": 1.0, "F": 0.0})
    bad = np.flatnonzero(gender.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{path}, line {_line_of_row(data, row, 0)}, column 'gender': "
                        f"{frame['gender'].iloc[row]!r} is not M or F. Fix the line or restore "
                        f"the original file")
    ids = frame["user"].to_numpy()
    _unique_ids(path, data, ids, 0, "user")
    onehot = np.zeros((len(frame), len(names)), np.float32)
    onehot[np.arange(len(frame)), codes.to_numpy(dtype=np.int64)] = 1.0
    first = frame["zip"].str.strip().str[:1]
    zip_prefix = pd.to_numeric(first.where(first.str.isdigit()), errors="coerce").fillna(-1)
    out = pd.DataFrame(onehot, columns=[f"occupation_{n}" for n in names], index=ids)
    out.insert(0, "age", frame["age"].to_numpy(dtype=np.float32))
    out.insert(1, "gender_M", gender.to_numpy(dtype=np.float32))
    out["zip_prefix"] = zip_prefix.to_numpy(dtype=np.float32)
    return out


def _align(table: pd.DataFrame, ids: np.ndarray, ratings: Path, side: Path, what: str,
           column: str, raw: np.ndarray, skip: int) -> pd.DataFrame:
    """Rows of ``table`` in the order of ``ids``; a rated id missing from the side file is an error."""
    missing = ~np.isin(ids, table.index.to_numpy())
    if missing.any():
        absent = ids[int(np.argmax(missing))]
        row = int(np.flatnonzero(raw == absent)[0])
        line = _line_of_row(read_bytes(ratings), row, skip)
        raise DataError(f"{ratings}, line {line}, column {column!r}: {what} {absent} is rated but "
                        f"missing from {side}; the files come from different releases or one is "
                        f"damaged. Use one complete release")
    return table.loc[ids]


# ---------------------------------------------------------------- loading


def _parse_release(release: Release, files: _Files) -> Dataset:
    """Parse one located release into a :class:`Dataset` (original ids kept)."""
    cols, sha = _parse_ratings(release, files.ratings)
    ds = Dataset.from_arrays(release.name, cols["user"], cols["item"], cols["rating"],
                             cols.get("timestamp"), checksum=f"sha256:{sha}")
    skip = 1 if release.layout == "csv" else 0
    items, genres = _parse_items(release, files.items)
    items = _align(items, ds.item_ids, files.ratings, files.items, "movie", "item", cols["item"],
                   skip)
    year = items["year"].to_numpy(dtype=np.float64)
    known = np.isfinite(year)
    fill = float(np.median(year[known])) if known.any() else 0.0
    features = np.column_stack([
        items[[f"genre_{g}" for g in genres]].to_numpy(dtype=np.float32),
        np.where(known, year, fill).astype(np.float32),
        (~known).astype(np.float32)])
    item_table = FeatureTable(features, tuple(f"genre_{g}" for g in genres) + ("year",
                                                                                  "year_missing"))
    user_table = None
    hashes = {files.ratings.name: sha, files.items.name: _content_sha256(files.items)}
    if files.users is not None:
        users = _align(_parse_users(release, files.users), ds.user_ids, files.ratings,
                       files.users, "user", "user", cols["user"], skip)
        user_table = FeatureTable(users.to_numpy(dtype=np.float32), tuple(users.columns))
        hashes[files.users.name] = _content_sha256(files.users)
    metadata = {
        "release": release.name, "files_sha256": hashes,
        "timestamps": "timestamp" in cols, "genres": genres,
    }
    titles = np.array([str(t) for t in items["title"].to_numpy()])
    return ds.replace(item_features=item_table, user_features=user_table, metadata=metadata,
                      item_info={"title": titles})


def _load(release: Release, cfg: MovieLensConfig, ctx: LoadContext) -> Dataset:
    files, _ = _locate(release, cfg, ctx)
    return _parse_release(release, files)


def load_directory(name: str, directory: str | Path) -> Dataset:
    """Parse the extracted release ``name`` (e.g. ``"ml-1m"``) found in ``directory``; never
    downloads. The same as loading the registered dataset with ``path=directory``."""
    if name not in RELEASES:
        raise DataError(f"unknown MovieLens release {name!r}; known: {', '.join(RELEASES)}")
    return _load(RELEASES[name], MovieLensConfig(str(directory)), LoadContext(None, Path(".")))


def _fingerprint(release: Release, cfg: MovieLensConfig, ctx: LoadContext) -> str:
    """Content hash of every file the parser reads (downloads the release if it must)."""
    files, _ = _locate(release, cfg, ctx)
    extra = [files.directory / n for n in ("u.genre", "u.occupation")
             if release.layout == "100k" and (files.directory / n).is_file()]
    parts = [release.name]  # the parser's code is part of the cache key (recbench.datacache)
    parts += [f"{p.name}={_content_sha256(p)}" for p in files.all() + extra]
    return digest_bytes("\n".join(parts).encode())


def _card(release: Release) -> DatasetCard:
    archive = ARCHIVES.get(release.name)
    url = archive.url if archive else f"{BASE_URL}/{release.name}.zip"
    digests = ", ".join(f"{k} {v}" for k, v in (("sha256", archive and archive.sha256),
                                                  ("md5", archive and archive.md5)) if v)
    return DatasetCard(
        description=f"{release.summary} Item features: multi-hot genres + release year; titles in "
                    f"item_info['title']. Archive checksum: {digests or 'none recorded'}.",
        source=url, license=release.license, citation=CITATION, bibtex=BIBTEX)


SPECS: list[DatasetSpec] = [
    DatasetSpec(release.name, functools.partial(_load, release), _card(release), MovieLensConfig,
                fingerprint=functools.partial(_fingerprint, release))
    for release in RELEASES.values()
]
