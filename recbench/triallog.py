"""Each trial's own log: what it printed and warned, kept next to its record (``logs/<key>.log``).

The file is appended to while the trial runs, so the lines of an attempt whose process was killed
stay for the next attempt to follow. Python-level output only: ``sys.stdout``, ``sys.stderr``,
warnings and log records (recbench's and the built-in plugins' from INFO up, whatever the console
shows); what native code writes to the file descriptors is not captured.

Output is routed per thread: while any trial runs, ``sys.stdout`` and ``sys.stderr`` are wrapped by
a stream that copies a thread's writes into that thread's trial log, so trials running at once in
one process (two runs, a threaded worker) never write into each other's logs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_local = threading.local()  # .log (the file) and .echo of the trial this thread runs
_lock = threading.Lock()
_active = [0]  # trials capturing now; the wrappers are installed while it is above 0


def _write_log(text: str) -> None:
    log = getattr(_local, "log", None)
    if log is not None:
        with contextlib.suppress(OSError, ValueError):  # a full disk must not fail the trial
            log.write(text)
            log.flush()


class _Routed:
    """Stands in for sys.stdout / sys.stderr: the thread's trial log, and the original stream
    unless that trial runs without echo (a worker process)."""

    def __init__(self, original: Any):
        self.original = original

    def write(self, text: str) -> int:
        _write_log(text)
        if getattr(_local, "echo", True):
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _ThisThread(logging.Handler):
    """Log records of the capturing thread into its trial log."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            _write_log(self.format(record) + "\n")


# recbench's and the built-in plugins' loggers: their INFO records (the per-epoch lines of the
# training loop) belong in a trial's log even when nothing shows them on the console.
INFO_LOGGERS = ("recbench", "recbench_builtin")
_levels: dict[str, int] = {}  # each logger's own level before the first capture lowered it


def _install() -> None:
    with _lock:
        if _active[0] == 0:
            sys.stdout, sys.stderr = _Routed(sys.stdout), _Routed(sys.stderr)  # type: ignore[assignment]
            for name in INFO_LOGGERS:
                logger = logging.getLogger(name)
                if logger.getEffectiveLevel() > logging.INFO:
                    _levels[name] = logger.level
                    logger.setLevel(logging.INFO)
        _active[0] += 1


def _uninstall() -> None:
    with _lock:
        _active[0] -= 1
        if _active[0] == 0:
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if isinstance(stream, _Routed):
                    setattr(sys, name, stream.original)
            for name, level in _levels.items():
                logging.getLogger(name).setLevel(level)
            _levels.clear()


@contextlib.contextmanager
def capture(path: Path, header: str, echo: bool = True) -> Iterator[None]:
    """Copy the block's stdout, stderr, warnings and log records (this thread's) into ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[str] = open(path, "a", encoding="utf-8")
    except OSError:
        yield  # no log (the disk may be full): the trial still runs and is recorded
        return
    _local.log, _local.echo = log, echo
    _write_log(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {header}\n")
    handler = _ThisThread()
    root = logging.getLogger()
    root.addHandler(handler)
    _install()  # warnings print to whatever sys.stderr is when they are shown: routed too
    try:
        yield
    finally:
        _uninstall()
        root.removeHandler(handler)
        _local.log, _local.echo = None, True
        with contextlib.suppress(OSError, ValueError):
            log.close()
