"""Trial claims: which process is running which trial, shared through the results directory.

Before a trial runs, its runner creates ``claims/<key>.claim`` with ``O_CREAT | O_EXCL`` (only one
process can create it; a second sees it and leaves the trial alone). The claim holds the host, the
process id and its start time, when it was claimed and the attempt number; a heartbeat thread
touches it while the trial runs. A claim is stale when its process is gone (same host: the pid is
not running, or is another process with a reused pid) or when its heartbeat stopped for longer
than the lease (another host). A stale claim is taken over with the attempt number raised by one:
the attempt count of a trial whose worker keeps dying lives here, whatever the executor.

Taking over and releasing happen under one ``flock`` of ``claims/.lock``, so a fresh claim is never
removed in place of the stale one it replaced. A claim appears whole (written to a temporary file,
then hard-linked into place), so a reader never sees a half-written one; an unreadable claim is
still treated as live until the lease has passed since it was written.

A process that only stood next to a dying one (its pool went down with it) did nothing wrong: the
coordinator *forgives* its stale claim, replacing it by a released one that keeps its attempt
number, so its rerun is the same attempt again instead of the next one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .errors import RecbenchError
from .fileio import atomic_create, atomic_write

LEASE_S = 120.0  # a claim whose heartbeat is older than this is stale (other hosts)
HEARTBEAT_S = 10.0


class ClaimError(RecbenchError):
    """The claims directory cannot be written (permissions, a full disk)."""


@dataclass
class Claim:
    """A trial this process holds; ``previous`` is the stale claim it took over (None: fresh)."""

    key: str
    path: Path
    attempt: int
    holder: dict[str, Any]
    previous: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started, or None where it is gone. A zombie (killed, not yet reaped
    by its parent: a Dask nanny under load may take a second) is gone too."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def this_holder(attempt: int) -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_started": _process_started(pid),
            "claimed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "attempt": attempt,
            "token": os.urandom(8).hex()}


def is_stale(holder: dict[str, Any], age_s: float, lease_s: float) -> bool:
    """Whether the process behind a claim is gone (see the module docstring)."""
    if holder.get("released"):
        return True
    if holder.get("host") == socket.gethostname():
        started = _process_started(int(holder.get("pid", -1)))
        return started is None or abs(started - float(holder.get("pid_started") or 0)) > 1.0
    return age_s > lease_s


class Claims:
    def __init__(self, root: str | Path, lease_s: float = LEASE_S,
                 heartbeat_s: float = HEARTBEAT_S):
        self.dir = Path(root) / "claims"
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.claim"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def holder(self, key: str) -> dict[str, Any] | None:
        """The live claim on ``key`` (None when unclaimed or stale)."""
        found = self._read(key)
        if found is None:
            return None
        holder, age = found
        return None if is_stale(holder, age, self.lease_s) else holder

    def _read(self, key: str) -> tuple[dict[str, Any], float] | None:
        path = self._path(key)
        try:
            text, age = path.read_text(), time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:  # not written by recbench (claims appear whole): live until the lease
            holder = {"host": "?", "attempt": 0}
        return holder, age

    def claim(self, key: str, attempt: int = 1) -> Claim | dict[str, Any]:
        """Claim ``key``: a :class:`Claim`, or the live holder's details when another process has
        it. A stale claim is taken over as the next attempt."""
        claim = self._create(key, attempt, None)
        if claim is not None:
            return claim
        with self._locked():
            found = self._read(key)
            if found is not None and not is_stale(*found, self.lease_s):
                return found[0]
            previous = found[0] if found else None
            if found is not None:
                self._path(key).unlink(missing_ok=True)
            claim = self._create(key, int((previous or {}).get("attempt", 0)) + 1, previous)
        if claim is None:  # created by another process between our unlink and create
            found = self._read(key)
            return found[0] if found else {"host": "?"}
        return claim

    def _create(self, key: str, attempt: int, previous: dict[str, Any] | None) -> Claim | None:
        path = self._path(key)
        holder = this_holder(attempt)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:  # whole or not at all: a reader never finds an empty claim to take for stale
            if not atomic_create(path, lambda f: json.dump(holder, f)):
                return None
        except OSError as e:
            raise ClaimError(f"cannot create the claim {path} ({e}); check the results "
                             "directory's permissions"
                             + (": the disk is full" if e.errno == errno.ENOSPC else
                                " and free space")) from None
        return Claim(key, path, attempt, holder, previous)

    def forgive(self, key: str, died: int | None = None, exit_s: float = 10.0) -> None:
        """A stale claim on ``key`` whose process died through no fault of its trial: released,
        keeping its attempt number for the rerun (a live or absent claim is left as it is).
        ``died``: the pid an engine reported dead. A scheduler can hear of the death (its
        sockets closed) before the kernel has finished the process, so a claim of that process
        on this host is given up to ``exit_s`` to become stale (one the scheduler dropped while
        it still runs costs that wait, and its claim stays live)."""
        found = self._read(key)
        if died is not None and found is not None and found[0].get("pid") == died and \
                found[0].get("host") == socket.gethostname():
            deadline = time.monotonic() + exit_s
            while not is_stale(*found, self.lease_s) and time.monotonic() < deadline:
                time.sleep(0.01)
        with self._locked():
            found = self._read(key)
            if found is None or found[0].get("released") or not is_stale(*found, self.lease_s):
                return
            released = {**found[0], "released": True,
                        "attempt": int(found[0].get("attempt", 1)) - 1}
            atomic_write(self._path(key), lambda f: json.dump(released, f))

    def drop_stale(self, key: str) -> None:
        """Remove a stale claim on ``key`` (its trial was stored as failed elsewhere)."""
        with self._locked():
            found = self._read(key)
            if found is not None and is_stale(*found, self.lease_s):
                self._path(key).unlink(missing_ok=True)

    @contextlib.contextmanager
    def beating(self, claim: Claim) -> Iterator[Claim]:
        """Touch the claim every ``heartbeat_s`` while the block runs, then release it."""
        def beat() -> None:
            while not claim._stop.wait(self.heartbeat_s):
                with contextlib.suppress(OSError):
                    os.utime(claim.path)
        thread = threading.Thread(target=beat, name=f"claim-{claim.key[:8]}", daemon=True)
        thread.start()
        try:
            yield claim
        finally:
            claim._stop.set()
            thread.join()
            self.release(claim)

    def release(self, claim: Claim) -> None:
        """Remove the claim if it is still ours (a claim taken over meanwhile stays)."""
        with self._locked():
            found = self._read(claim.key)
            if found and found[0].get("token") == claim.holder["token"]:
                claim.path.unlink(missing_ok=True)
