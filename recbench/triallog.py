"""Each trial's own log: what it printed and warned, kept next to its record (``logs/<key>.log``).

The file is appended to while the trial runs, so the lines of an attempt whose process was killed
stay for the next attempt to follow. Python-level output only: ``sys.stdout``, ``sys.stderr``,
warnings and log records; what native code writes to the file descriptors is not captured.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class _Tee:
    """A text stream writing to the log file and, when ``echo``, to the stream it replaced."""

    def __init__(self, log: IO[str], original: Any, echo: bool):
        self.log, self.original, self.echo = log, original, echo

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):  # a full disk must not fail the trial
            self.log.write(text)
            self.log.flush()
        if self.echo:
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        if self.echo:
            self.original.flush()

    def isatty(self) -> bool:
        return self.echo and self.original.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


@contextlib.contextmanager
def capture(path: Path, header: str, echo: bool = True) -> Iterator[None]:
    """Copy the block's stdout, stderr, warnings and log records (root logger) into ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[str] = open(path, "a", encoding="utf-8")
    except OSError:
        yield  # no log (the disk may be full): the trial still runs and is recorded
        return
    with contextlib.suppress(OSError, ValueError):
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {header}\n")
    # Warnings print to whatever sys.stderr is when they are shown: the tee below.
    out, err = _Tee(log, sys.stdout, echo), _Tee(log, sys.stderr, echo)
    handler = logging.StreamHandler(_Tee(log, sys.stderr, False))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var]
            yield
    finally:
        root.removeHandler(handler)
        with contextlib.suppress(OSError, ValueError):
            log.close()
