"""Verified downloads and safe extraction for dataset plugins: one cache, no partial files, no escapes.

Every dataset plugin that fetches files uses these three functions:

- :func:`download_dir` is where downloads go, chosen by the harness through the
  :class:`~recbench.LoadContext`, never by the plugin: ``ctx.data_dir`` when the run names one
  (``--data-dir``, or ``RECBENCH_DATA_DIR`` as its default), so a download lands beside the local
  copies and is found there next time; else ``ctx.cache_dir / "downloads"`` (``RECBENCH_CACHE_DIR``,
  default ``~/.cache/recbench``). A plugin adds its own subfolder (``movielens/``, ...).
- :func:`fetch` downloads one URL into a hidden temporary file next to its final place
  (:func:`recbench.fileio.atomic_write`: fsynced, then renamed), verifying its checksum (sha256
  and/or md5, whichever the caller recorded) before the rename. A failed, truncated or corrupted
  download never lands in the folder. When the final file is already there and verifies, there is
  no network access at all.
- :func:`extract` unpacks a zip or tar archive into a temporary directory next to ``dest`` and renames
  it into place, so an extraction is all or nothing. Members with absolute paths, ``..`` components,
  links pointing outside ``dest``, or device files are refused before anything is written.

Only the standard library (urllib) is used: no new dependency.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import lzma
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import DataError
from .fileio import CHUNK, atomic_write, digest_chunks, digest_file
from .specs import LoadContext

STALE_PART_SECONDS = 600  # a .part file untouched this long belongs to a killed download
_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}

__all__ = ["digest_file", "download_dir", "extract", "fetch"]


def download_dir(ctx: LoadContext) -> Path:
    """Where a dataset plugin's downloads go: ``ctx.data_dir`` when given, else
    ``ctx.cache_dir / "downloads"`` (see the module docstring)."""
    if ctx.data_dir is not None:
        return Path(ctx.data_dir).expanduser()
    return Path(ctx.cache_dir).expanduser() / "downloads"


def _expected(sha256: str | None, md5: str | None) -> dict[str, str]:
    expected: dict[str, str] = {}
    for algorithm, value in (("sha256", sha256), ("md5", md5)):
        if not value:
            continue
        value = value.strip().lower()
        if value.startswith(f"{algorithm}:"):
            value = value[len(algorithm) + 1:]
        if len(value) != _DIGEST_LENGTHS[algorithm] or not _HEX.match(value):
            raise DataError(f"{algorithm} checksum {value!r} is not {_DIGEST_LENGTHS[algorithm]} hex "
                            f"digits; fix the checksum recorded for this file")
        expected[algorithm] = value
    return expected


def _verifies(path: Path, expected: dict[str, str]) -> bool:
    return all(digest_file(path, a) == v for a, v in expected.items())


def _describe(expected: dict[str, str], actual: dict[str, str]) -> str:
    return "; ".join(f"expected {a} {expected[a]}, got {actual[a]}" for a in expected)


def _clean_stale_parts(dest_dir: Path, filename: str) -> None:
    """Remove temporary files a killed download left behind (never a fresh one: it may be live)."""
    now = time.time()
    for part in dest_dir.glob(f".{filename}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()


def fetch(url: str, sha256: str | None = None, dest_dir: str | os.PathLike[str] | None = None, *,
          md5: str | None = None, filename: str | None = None, timeout: float = 60.0,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` (a plugin passes a folder under :func:`download_dir`),
    verified, and return its path.

    ``sha256`` and/or ``md5`` are the expected hex digests (at least one is required; both are
    checked when both are given; a ``"sha256:"``/``"md5:"`` prefix is accepted). ``filename``
    defaults to the last component of the URL. ``timeout`` bounds each network operation (seconds);
    ``progress(bytes_so_far, total_or_None)`` is called after each chunk.

    If the file is already in ``dest_dir`` and verifies, nothing is downloaded. If it is there but
    does not verify (changed or damaged), it is downloaded again and replaced atomically. Raises
    :class:`DataError` on a network error, a truncated transfer or a checksum mismatch; in every
    failure case nothing is left in ``dest_dir``.
    """
    expected = _expected(sha256, md5)
    if not expected:
        raise DataError(f"refusing to download {url} without a recorded checksum: record its sha256 "
                        f"(or md5) next to the URL, or download it yourself and use the local copy")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DataError(f"cannot download {url!r}: only http, https and file URLs are supported")
    if dest_dir is None:
        raise DataError(f"fetch({url!r}) needs dest_dir: pass a folder under "
                        "recbench.download.download_dir(ctx), the place the harness chose")
    dest = Path(dest_dir)
    filename = filename or Path(urllib.parse.urlsplit(url).path).name
    if not filename or filename in (".", ".."):
        raise DataError(f"cannot tell a file name from {url!r}; pass filename=")
    final = dest / filename
    if final.is_file() and _verifies(final, expected):
        return final
    if dest.is_dir():
        _clean_stale_parts(dest, filename)
    what_to_do = ("Check the network and retry; nothing was saved. Offline, download the file "
                  "yourself and point the dataset's `path` option or --data-dir at the extracted "
                  "copy.")
    done = 0

    def receive(out: Any) -> None:
        # Runs inside atomic_write: raising here removes the temporary file, so nothing lands.
        total = None

        def chunks() -> Iterator[bytes]:  # written as they arrive, and hashed
            nonlocal done, total
            request = urllib.request.Request(url, headers={"User-Agent": "recbench"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                    yield chunk

        actual = digest_chunks(chunks(), expected)
        if total is not None and done != total:
            raise DataError(f"download of {url} is truncated: got {done} of {total} bytes. "
                            f"{what_to_do}")
        if actual != expected:
            raise DataError(
                f"checksum mismatch for {url}: {_describe(expected, actual)}. The download is "
                f"corrupted or the file changed upstream, so it was discarded (nothing cached). "
                f"Retry once; if it still differs, the publisher changed the file: check it "
                f"yourself, then point the dataset's `path` option or --data-dir at the extracted "
                f"copy, or update the recorded checksum.")

    try:
        atomic_write(final, receive, "wb")
    except DataError:
        raise
    except urllib.error.HTTPError as e:
        raise DataError(f"downloading {url} failed: HTTP {e.code} {e.reason}. {what_to_do}") \
            from None
    except http.client.IncompleteRead as e:
        got = done + len(e.partial)
        raise DataError(f"download of {url} is truncated: the connection closed after {got} "
                        f"bytes ({e.expected} more expected). {what_to_do}") from None
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout,
            ConnectionError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"downloading {url} failed: {reason}. {what_to_do}") from None
    except OSError as e:  # creating or writing the folder: permissions, disk full
        raise DataError(f"saving {url} into {dest} failed: {e}. Free some disk space, or point "
                        f"--data-dir (RECBENCH_DATA_DIR) or RECBENCH_CACHE_DIR at a writable "
                        f"directory; nothing was saved") from None
    return final


# ---------------------------------------------------------------- extraction


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path an archive member will take; refuses absolute paths and ``..``."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        raise DataError(f"archive {archive} is unsafe: member {name!r} has an absolute path. "
                        f"Refusing to extract it; delete the archive and get it from the official "
                        f"source")
    parts = PurePosixPath(clean).parts
    if ".." in parts:
        raise DataError(f"archive {archive} is unsafe: member {name!r} points outside the "
                        f"extraction directory ('..'). Refusing to extract it; delete the archive "
                        f"and get it from the official source")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath()


def _link_escapes(member: PurePosixPath, target: str) -> bool:
    target = target.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return True
    depth = 0
    for part in list(member.parent.parts) + list(PurePosixPath(target).parts):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> None:
    for info in zf.infolist():
        rel = _member_path(info.filename, archive)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            if _link_escapes(rel, target):
                raise DataError(f"archive {archive} is unsafe: member {info.filename!r} is a link "
                                f"to {target!r}, outside the extraction directory. Refusing to "
                                f"extract it")


def _check_tar(tf: tarfile.TarFile, archive: Path) -> None:
    for m in tf.getmembers():
        rel = _member_path(m.name, archive)
        if m.issym() or m.islnk():
            # Hard links name a path relative to the archive root, symlinks one relative to the member.
            escapes = (_link_escapes(PurePosixPath("x"), m.linkname) if m.islnk()
                       else _link_escapes(rel, m.linkname))
            if escapes:
                raise DataError(f"archive {archive} is unsafe: member {m.name!r} links to "
                                f"{m.linkname!r}, outside the extraction directory. Refusing to "
                                f"extract it")
        elif not (m.isfile() or m.isdir()):
            raise DataError(f"archive {archive} holds a device or special file {m.name!r}; "
                            f"refusing to extract it")


def extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str], *,
            overwrite: bool = False) -> Path:
    """Unpack a zip or tar (gz/bz2/xz) ``archive`` into the directory ``dest``; return ``dest``.

    Every member is checked first (no absolute paths, no ``..``, no links leaving ``dest``, no device
    files); then the archive is unpacked into a temporary directory beside ``dest`` and renamed into
    place. An existing ``dest`` is a finished earlier extraction and is returned unchanged, unless
    ``overwrite`` is true, in which case it is replaced. Raises :class:`DataError` for an unsafe,
    corrupted or truncated archive, leaving nothing behind.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.is_dir() and not overwrite:
        return dest
    if not archive.is_file():
        raise DataError(f"archive {archive} does not exist; download it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _check_zip(zf, archive)
                    bad = zf.testzip()
                    if bad is not None:
                        raise zipfile.BadZipFile(f"bad CRC-32 for member {bad!r}")
                    zf.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tf:
                    _check_tar(tf, archive)
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(tmp, filter="data")
                    else:  # pragma: no cover - Python without extraction filters
                        tf.extractall(tmp)  # noqa: S202 - every member was checked above
            else:
                raise DataError(f"{archive} is neither a zip nor a tar archive (or it is truncated "
                                f"past recognition); delete it and download it again")
        except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error,
                lzma.LZMAError) as e:
            raise DataError(f"archive {archive} is corrupted or truncated ({e}); delete it and "
                            f"download it again") from None
        except OSError as e:
            raise DataError(f"extracting {archive} into {dest.parent} failed: {e}. Free some disk "
                            f"space, or point --data-dir (RECBENCH_DATA_DIR) or "
                            f"RECBENCH_CACHE_DIR at a writable directory") from None
        if dest.exists() and overwrite:
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, dest)
            except OSError:
                if not dest.is_dir():  # a concurrent extraction won the race: use its result
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
