"""The dataset I/O kit: every file recbench hashes, reads, decodes or writes goes through here.

- :func:`digest_file` hashes a file in 1 MiB chunks (sha256 by default; md5 where a published
  checksum is md5); :func:`file_sha256` is the same digest remembered per (path, size, mtime), so a
  fingerprint and the parse that follows read a large file once, and with ``decompressed=True`` it
  hashes the content of a ``.gz``/``.bz2``/``.xz`` file (a local ``ratings.dat.gz`` and an extracted
  ``ratings.dat`` then agree).
- :func:`read_bytes` reads a file, decompressed by its suffix (``.gz``, ``.bz2``, ``.xz``, a ``.zip``
  holding one file); a damaged archive is a :class:`DataError` naming the file.
- :func:`text_encoding` / :func:`decode_text` are the one decoding rule: a UTF-16 byte-order mark
  means UTF-16, a UTF-8 mark is dropped, then UTF-8, else ISO-8859-1 (Latin-1, which every byte
  sequence decodes as: the older MovieLens files are Latin-1).
- :data:`MISSING_VALUES` is the one set of spellings read as a missing value in a data file.
  ``"NA"`` is not one of them: it is a valid id or title (the country code of Namibia, a film).
- :func:`atomic_write` writes through a temporary file in the target's directory, flushes and fsyncs
  it, then renames it into place with ``os.replace``: a reader sees the old file or the whole new one,
  never a half-written one, and a crash leaves at most a hidden ``.tmp`` file behind.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import DataError

CHUNK = 1 << 20
MISSING_VALUES: frozenset[str] = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "None",
                                            "none"})
_OPENERS: dict[str, Callable[..., BinaryIO]] = {".gz": gzip.open, ".bz2": bz2.open,
                                                ".xz": lzma.open}
_DECOMPRESS_ERRORS = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error,
                      zipfile.BadZipFile)


def digest_chunks(chunks: Iterable[bytes], algorithms: Iterable[str]) -> dict[str, str]:
    """Hex digests of the concatenated ``chunks`` under each algorithm, in one pass: the one
    streaming hasher (files here, a download as it arrives in :mod:`recbench.download`)."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    for chunk in chunks:
        for h in hashers.values():
            h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _digest_stream(f: BinaryIO, algorithm: str) -> str:
    return digest_chunks(iter(lambda: f.read(CHUNK), b""), (algorithm,))[algorithm]


def digest_file(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    with open(path, "rb") as f:
        return _digest_stream(f, algorithm)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


_SHA_MEMO: dict[tuple[str, int, int, bool], str] = {}


def file_sha256(path: str | os.PathLike[str], *, decompressed: bool = False) -> str:
    """sha256 of a file's bytes (of its decompressed content with ``decompressed`` and a
    ``.gz``/``.bz2``/``.xz`` suffix), remembered until the file's size or mtime changes."""
    path = Path(path)
    st = path.stat()
    opener = _OPENERS.get(path.suffix.lower()) if decompressed else None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, opener is not None)
    if key not in _SHA_MEMO:
        if opener is None:
            _SHA_MEMO[key] = digest_file(path)
        else:
            try:
                with opener(path, "rb") as f:
                    _SHA_MEMO[key] = _digest_stream(f, "sha256")
            except _DECOMPRESS_ERRORS as e:
                raise _damaged(path, e) from None
    return _SHA_MEMO[key]


def _damaged(path: Path, e: Exception) -> DataError:
    return DataError(f"{path}: cannot decompress ({type(e).__name__}: {e}); replace it with an "
                     "intact copy, or decompress it yourself")


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's content, decompressed by suffix: ``.gz``, ``.bz2``, ``.xz``, or a ``.zip`` that
    holds exactly one file."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _OPENERS:
            with _OPENERS[suffix](path, "rb") as f:
                return f.read()
        if suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(f"{path}: a .zip must hold exactly one file, this one holds "
                                    f"{len(members)} ({', '.join(members[:10]) or 'none'}); unpack "
                                    "it and point the config at the file you mean")
                return z.read(members[0])
    except DataError:
        raise
    except _DECOMPRESS_ERRORS as e:
        raise _damaged(path, e) from None
    return path.read_bytes()


def text_encoding(data: bytes) -> str:
    """The codec name (for ``bytes.decode`` or pandas) under recbench's one decoding rule."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the codec reads the mark and drops it
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def decode_text(data: bytes) -> str:
    """``data`` as text under :func:`text_encoding`'s rule (never raises for UTF-8/Latin-1 input)."""
    try:
        return data.decode(text_encoding(data))
    except UnicodeDecodeError as e:  # a UTF-16 mark followed by an odd byte count
        raise DataError(f"the text starts with a UTF-16 byte-order mark but does not decode as "
                        f"UTF-16 ({e}); re-save the file as UTF-8") from None


def _fsynced_temp(path: Path, write: Callable[[IO[Any]], object], mode: str) -> Path:
    """A temporary file beside ``path`` holding what ``write`` wrote, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], object],
                 mode: str = "w") -> None:
    """Call ``write(f)`` on a temporary file (opened with ``mode``), fsync it, rename it to ``path``.

    The parent directory is created if needed. On any error the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    tmp = _fsynced_temp(path, write, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_create(path: str | os.PathLike[str], write: Callable[[IO[Any]], object],
                  mode: str = "w") -> bool:
    """Like :func:`atomic_write`, but never replaces: False (nothing written) when ``path`` exists.

    The file appears whole through a hard link, so of two processes creating one path the first
    wins and the second sees False (on a filesystem without hard links: check, then rename).
    """
    path = Path(path)
    tmp = _fsynced_temp(path, write, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["MISSING_VALUES", "atomic_create", "atomic_write", "decode_text", "digest_bytes", "digest_file",
           "file_sha256", "read_bytes", "text_encoding"]
