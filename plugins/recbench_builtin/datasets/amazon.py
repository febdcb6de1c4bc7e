"""Amazon review data in the sequential papers' preprocessing: ``amazon-beauty`` and ``amazon-games``.

- ``amazon-beauty``: Amazon "Beauty" 5-core (2014 crawl) as preprocessed by S3-Rec (Zhou et al.,
  CIKM 2020) and reused unchanged by ICLRec, CL4SRec, DuoRec...: 22,363 users, 12,101 items,
  198,502 interactions. File ``Beauty.txt``: one user per line, ``user item_1 ... item_n``, items in
  review-time order. Item attributes (category and brand ids) from ``Beauty_item2attributes.json``
  when that file lies next to it: a sparse multi-hot item :class:`FeatureTable`, columns
  ``attr_<id>``.
- ``amazon-games``: Amazon "Video Games" as preprocessed by SASRec (Kang & McAuley, ICDM 2018):
  31,013 users, 23,715 items, 287,107 interactions. File ``Video.txt``: one ``user item`` pair per
  line, each user's lines in time order.

Neither file has timestamps or ratings. The timestamp of an interaction is its **position in the
user's sequence** (0 for the oldest), so every time-ordered splitter (``leave-last-out``,
``temporal``) and sequential model sees the published order, with no ties. These positions are not
comparable across users: a global temporal cut over them is meaningless (use per-user protocols).

Where the file comes from, in this order: config ``path`` (the file or its folder); the data dir
(``--data-dir``), in the source's folder (``amazon-beauty-5core-s3rec/``, ``amazon-games-sasrec/``)
or the data dir itself; else it is downloaded once from the authors' GitHub repository at a pinned
commit into the download folder (:func:`recbench.api.download_dir`) and verified by its sha256
(recorded in :data:`SOURCES`). The attributes file is used only when present locally (it is never
downloaded: the interaction data alone is the benchmark). ``Dataset.checksum`` is ``sha256:`` + the
interaction file's sha256, so a local copy and a download agree.

Bad input gets a :class:`DataError` naming the file and the line: a non-integer field, a user line
without items, a user on two lines (``amazon-beauty``), a pair line without exactly two fields.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recbench.api import (
    check,
    DataError,
    Dataset,
    DatasetCard,
    DatasetSpec,
    decode_text,
    digest_bytes,
    download_dir,
    FeatureTable,
    fetch,
    file_sha256,
    LoadContext,
    read_bytes,
)

_MCAULEY = ("R. He and J. McAuley. Ups and downs: Modeling the visual evolution of fashion trends "
            "with one-class collaborative filtering. WWW 2016. J. McAuley, C. Targett, Q. Shi and "
            "A. van den Hengel. Image-based recommendations on styles and substitutes. SIGIR 2015.")
_TERMS = ("No license is attached to the data. It derives from Amazon.com reviews collected by "
          "Julian McAuley's group (UCSD), who ask users to cite their papers; treat it as research "
          "use only (Amazon's terms also apply) and do not republish it. The repositories' code "
          "licenses do not cover the data.")


@dataclass(frozen=True)
class Source:
    """One preprocessed release: where its file lives locally and upstream, and how to read it."""

    name: str
    folder: str  # the folder under the data dir
    filename: str
    layout: str  # "lines": user item_1 ... item_n per line; "pairs": user item per line
    url: str  # raw GitHub file at a pinned commit
    sha256: str
    summary: str
    citation: str
    attributes: str | None = None  # item -> attribute ids JSON, used when present locally


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("amazon-beauty", "amazon-beauty-5core-s3rec", "Beauty.txt", "lines",
           "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/"
           "2a81540ae18615d88ef88227b0c066e5b74781e5/data/Beauty.txt",
           "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
           "Amazon Beauty 5-core (2014 crawl), S3-Rec preprocessing: 22,363 users x 12,101 items, "
           "198,502 implicit interactions in review-time order.",
           "K. Zhou et al. S3-Rec: Self-Supervised Learning for Sequential Recommendation with "
           "Mutual Information Maximization. CIKM 2020. " + _MCAULEY,
           attributes="Beauty_item2attributes.json"),
    Source("amazon-games", "amazon-games-sasrec", "Video.txt", "pairs",
           "https://raw.githubusercontent.com/kang205/SASRec/"
           "e3738967fddab206d6eeb4fda433e7a7034dd8b1/data/Video.txt",
           "b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651",
           "Amazon Video Games (2014 crawl), SASRec preprocessing: 31,013 users x 23,715 items, "
           "287,107 implicit interactions in time order (some users and items have fewer than 5).",
           "W.-C. Kang and J. McAuley. Self-Attentive Sequential Recommendation. ICDM 2018. "
           + _MCAULEY),
)}


@dataclass(frozen=True)
class AmazonConfig:
    """``path``: the interaction file or its folder (offline use); otherwise ``--data-dir`` or the
    verified download. ``attributes``: read the item attributes file when it is present."""

    path: str | None = None
    attributes: bool = True

    def __post_init__(self) -> None:
        check(self.path is None or bool(self.path.strip()),
              "path must name the interaction file or the folder holding it, got an empty string")


# ---------------------------------------------------------------- locating the file


def _find(source: Source, folder: Path) -> Path | None:
    for base in (folder / source.folder, folder):
        if (base / source.filename).is_file():
            return base / source.filename
    return None


def locate(source: Source, cfg: AmazonConfig, ctx: LoadContext) -> Path:
    """The interaction file: config ``path``, else the data dir, else the verified download."""
    if cfg.path is not None:
        p = Path(cfg.path).expanduser()
        found = p if p.is_file() else _find(source, p)
        if found is None:
            raise DataError(f"{source.name}: path {str(p)!r} is neither {source.filename} nor a "
                            f"folder holding it; point it at the file (or drop it to download)")
        return found
    if ctx.data_dir is not None:
        found = _find(source, Path(ctx.data_dir).expanduser())
        if found is not None:
            return found
    return Path(fetch(source.url, source.sha256, download_dir(ctx) / source.folder,
                      filename=source.filename))


def _attributes_file(source: Source, cfg: AmazonConfig, data: Path) -> Path | None:
    if not cfg.attributes or source.attributes is None:
        return None
    p = data.parent / source.attributes
    return p if p.is_file() else None


# ---------------------------------------------------------------- parsing


def _integers(path: Path, lineno: int, fields: list[str]) -> list[int]:
    try:
        return [int(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not f.lstrip("-").isdigit())
        raise DataError(f"{path}: line {lineno}: {bad!r} is not an integer id; the file must hold "
                        f"whitespace-separated integer ids only") from None


def _parse_lines(path: Path, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``user item_1 ... item_n`` per line -> (user, item) rows in the file's order."""
    users, items, counts, seen = [], [], [], {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        ids = _integers(path, lineno, fields)
        if len(ids) < 2:
            raise DataError(f"{path}: line {lineno}: user {ids[0]} has no items; each line is "
                            f"'user item_1 ... item_n' with at least one item")
        if ids[0] in seen:
            raise DataError(f"{path}: line {lineno}: user {ids[0]} already appeared on line "
                            f"{seen[ids[0]]}; each user must have exactly one line")
        seen[ids[0]] = lineno
        users.append(ids[0])
        counts.append(len(ids) - 1)
        items.extend(ids[1:])
    return np.repeat(np.asarray(users, np.int64), counts), np.asarray(items, np.int64)


def _parse_pairs(path: Path, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``user item`` per line -> (user, item) rows in the file's order."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{path}: line {lineno}: {len(fields)} fields, expected 2 "
                            f"('user item')")
        rows.append(_integers(path, lineno, fields))
    pairs = np.asarray(rows, np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def positions(user: np.ndarray) -> np.ndarray:
    """Each row's 0-based position among its user's rows, in row order (the timestamps)."""
    order = np.argsort(user, kind="stable")
    sorted_users = user[order]
    starts = np.searchsorted(sorted_users, sorted_users)
    out = np.empty(len(user), np.int64)
    out[order] = np.arange(len(user)) - starts
    return out


def _attribute_table(path: Path, item_ids: np.ndarray) -> FeatureTable:
    """``{"item": [attr, ...]}`` -> multi-hot CSR rows aligned with ``item_ids``."""
    try:
        mapping = json.loads(decode_text(read_bytes(path)))
        pairs = [(int(item), int(a)) for item, attrs in mapping.items() for a in attrs]
    except (ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: not a JSON object of item id -> list of attribute ids ({e}); "
                        f"fix or remove the file (attributes=false skips it)") from None
    attr_ids = np.unique([a for _, a in pairs]) if pairs else np.zeros(0, np.int64)
    row_of = {int(v): r for r, v in enumerate(item_ids)}
    kept = [(row_of[i], a) for i, a in pairs if i in row_of]  # items without interactions drop
    rows = np.asarray([r for r, _ in kept], np.int64)
    cols = np.searchsorted(attr_ids, np.asarray([a for _, a in kept], np.int64))
    values = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                           shape=(len(item_ids), len(attr_ids)))
    values.sum_duplicates()
    values.data[:] = 1.0
    return FeatureTable(values, tuple(f"attr_{a}" for a in attr_ids))


def _load(source: Source, cfg: AmazonConfig, ctx: LoadContext) -> Dataset:
    path = locate(source, cfg, ctx)
    lines = decode_text(read_bytes(path)).splitlines()
    parse = _parse_lines if source.layout == "lines" else _parse_pairs
    user, item = parse(path, lines)
    if len(user) == 0:
        raise DataError(f"{path}: no interactions; the file is empty")
    digest = file_sha256(path)
    ds = Dataset.from_arrays(source.name, user, item, timestamp=positions(user),
                             checksum=f"sha256:{digest}",
                             metadata={"source": source.url, "input": path.name,
                                       "timestamps": "position within the user's sequence"})
    attrs = _attributes_file(source, cfg, path)
    if attrs is None:
        return ds
    return ds.replace(item_features=_attribute_table(attrs, ds.item_ids),
                      metadata={**ds.metadata, "attributes": attrs.name})


def _fingerprint(source: Source, cfg: AmazonConfig, ctx: LoadContext) -> str:
    """Content hash of every file the parser reads (downloads the file if it must)."""
    path = locate(source, cfg, ctx)
    parts = [source.name, f"{path.name}={file_sha256(path)}"]
    attrs = _attributes_file(source, cfg, path)
    if attrs is not None:
        parts.append(f"{attrs.name}={file_sha256(attrs)}")
    return digest_bytes("\n".join(parts).encode())


def _card(source: Source) -> DatasetCard:
    extra = (f" Item attributes (multi-hot, columns attr_<id>) from {source.attributes} when it "
             "lies next to the file." if source.attributes else "")
    return DatasetCard(
        description=f"{source.summary} Timestamps are positions within each user's sequence (no "
                    f"ties; not comparable across users).{extra} File sha256 {source.sha256}.",
        source=source.url, license=_TERMS, citation=source.citation)


SPECS: list[DatasetSpec] = [
    DatasetSpec(s.name, functools.partial(_load, s), _card(s), AmazonConfig,
                fingerprint=functools.partial(_fingerprint, s))
    for s in SOURCES.values()
]
