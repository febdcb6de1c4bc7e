"""File primitives used everywhere in recbench: one streaming digest, one atomic write.

- :func:`digest_file` hashes a file in 1 MiB chunks (sha256 by default; md5 where a published
  checksum is md5).
- :func:`atomic_write` writes through a temporary file in the target's directory, flushes and fsyncs
  it, then renames it into place with ``os.replace``: a reader sees the old file or the whole new one,
  never a half-written one, and a crash leaves at most a hidden ``.tmp`` file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20


def digest_file(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], object],
                 mode: str = "w") -> None:
    """Call ``write(f)`` on a temporary file (opened with ``mode``), fsync it, rename it to ``path``.

    The parent directory is created if needed. On any error the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
