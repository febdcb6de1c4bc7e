"""Where a run's trials execute: this process (serial), a local process pool, or a Dask cluster.

Every executor yields the same events to :meth:`recbench.runner.Runner.run`: ``("started",
message)`` for progress and ``("finished", record)`` for each stored trial; the runner calls the
hooks. Trials are claimed in the result store before they run (:mod:`recbench.claims`), so a
trial another run holds comes back as its holder; it is asked for again once the holder is done
(or dead), and then its stored record is read or it runs here.

A worker that dies (SIGKILL, out of memory) is handled by the engine, never by a scheduler of our
own: ``concurrent.futures`` reports a broken pool, Dask a ``KilledWorker``. The trials in flight are
submitted again; the stale claim each left makes the retry the next attempt of the policy
(:class:`recbench.runner.RetryPolicy`), and the one that exhausts it is stored as failed. A broken
process pool takes every worker down with it, and a Dask worker of several threads every trial it
ran: when several trials were in flight, none is charged (their claims are forgiven, keeping the
attempt number) and they are retried one at a time, each alone, so only the one that really kills
its process uses up its attempts.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .config import check
from .errors import ConfigError
from .records import PlannedTrial, died_record
from .worker import Job, await_workers, init_process, run_unit, thread_env

Event = tuple[str, Any]
log = logging.getLogger(__name__)
POLL_S = 0.5  # how often trials held by another run are looked at


@dataclass(frozen=True)
class ExecutorConfig:
    kind: Literal["serial", "processes", "dask"] = "serial"
    workers: int | None = None  # default: the cores / threads_per_worker (dask: the cluster's)
    threads_per_worker: int = 1  # JAX and BLAS threads of each worker
    scheduler: str | None = None  # dask: join this scheduler instead of starting a LocalCluster
    memory_limit: str | None = None  # dask LocalCluster: each worker's limit ("2GB"); None: auto
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        check(self.kind in ("serial", "processes", "dask"),
              f"executor must be serial, processes or dask, got {self.kind!r}")
        check(self.workers is None or (isinstance(self.workers, int) and self.workers >= 1),
              f"workers must be a positive integer, got {self.workers!r}")
        check(isinstance(self.threads_per_worker, int) and self.threads_per_worker >= 1,
              f"threads per worker must be a positive integer, got {self.threads_per_worker!r}")
        check(self.scheduler is None or self.kind == "dask",
              "--scheduler joins a Dask cluster: use it with --executor dask")
        check(self.scheduler is None or "://" in self.scheduler,
              f"--scheduler must be an address like tcp://HOST:8786, got {self.scheduler!r}")
        check(self.memory_limit is None or (self.kind == "dask" and self.scheduler is None),
              "--memory-limit sizes the workers of a local Dask cluster: use it with --executor "
              "dask and without --scheduler")
        check(self.connect_timeout_s > 0, "the scheduler connect timeout must be positive")

    def n_workers(self) -> int:
        return self.workers or max(1, len(os.sched_getaffinity(0)) // self.threads_per_worker)


def make_executor(config: ExecutorConfig) -> Any:
    return {"serial": Serial, "processes": Processes, "dask": Dask}[config.kind](config)


def label(t: PlannedTrial) -> str:
    return f"{t.dataset} / {t.model} / seed {t.seed}" + ("" if t.fold is None else
                                                          f" fold {t.fold}")


def is_record(outcome: Any) -> bool:
    return isinstance(outcome, dict) and "status" in outcome


class _Executor:
    """Runs passes over the trials until none is left held by another process."""

    def __init__(self, config: ExecutorConfig | None = None):
        self.config = config or ExecutorConfig()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Workers started or joined (the runner enters it before loading any data, so an
        unreachable scheduler fails in seconds); released at the end."""
        yield

    def run(self, runner: Any, todo: list[PlannedTrial]) -> Iterator[Event]:
        held: list[PlannedTrial] = []
        while todo or held:
            if todo:
                held += yield from self._pass(runner, todo)
            if held:
                yield "started", f"waiting for {len(held)} trial(s) another run is running"
            todo, held = _wait_some_free(runner, held)

    def _pass(self, runner: Any, todo: list[PlannedTrial]
              ) -> Iterator[Event]:  # returns the trials held elsewhere
        raise NotImplementedError


def _wait_some_free(runner: Any, held: list[PlannedTrial]
                    ) -> tuple[list[PlannedTrial], list[PlannedTrial]]:
    """Block until at least one held trial is no longer held: (free ones, still held ones)."""
    while held:
        free = [t for t in held if runner.claims.holder(t.key) is None]
        if free:
            return free, [t for t in held if t not in free]
        time.sleep(POLL_S)
    return [], []


class Serial(_Executor):
    """In this process, one trial after the other (the default)."""

    def _pass(self, runner: Any, todo: list[PlannedTrial]) -> Iterator[Event]:
        import jax

        held = []
        with jax.default_device(runner.device):
            for t in todo:
                yield "started", label(t)
                outcome = runner.execute(t)
                if is_record(outcome):
                    yield "finished", outcome
                else:
                    held.append(t)
        return held


class _Pool(_Executor):
    """Shared by the process pool and Dask: a unit per trial, results as they complete."""

    def _job(self, runner: Any) -> Job:
        return Job.of(runner, self.config.threads_per_worker, uuid.uuid4().hex)

    def _lost(self, runner: Any, t: PlannedTrial, deaths: dict[str, int]) -> dict[str, Any] | None:
        """A worker died under ``t``: None to submit it again, or its final failed record when
        it died more often than the policy allows without its claim recording it (a worker
        that dies before it claims, e.g. at start-up)."""
        deaths[t.key] = deaths.get(t.key, 0) + 1
        if deaths[t.key] <= runner.options.retry.attempts:
            return None
        last = {"attempt": deaths[t.key], "host": "?", "pid": -1, "claimed": "?"}
        record = runner._store(died_record(t, last, runner.options.retry.as_record()), {}, t)
        runner.claims.drop_stale(t.key)  # the next run starts it afresh
        return record

    def _outcome(self, runner: Any, t: PlannedTrial, value: Any, held: list[PlannedTrial]
                 ) -> Iterator[Event]:
        if is_record(value):
            yield "finished", value
        else:
            held.append(t)


class Processes(_Pool):
    """A ``concurrent.futures.ProcessPoolExecutor`` (spawn): ``workers`` local processes."""

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        n = self.config.n_workers()
        pool = cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=init_process,
                                      initargs=(self.config.threads_per_worker, ctx.Value("i", 0),
                                                n > 1))
        # Every worker started before any trial: CPython's pool watches the workers that existed
        # when it last woke up, so one spawned on demand could die unnoticed (its trial not
        # retried) until another trial finished.
        cf.wait([pool.submit(await_workers, n) for _ in range(n)])
        return pool

    def _pass(self, runner: Any, todo: list[PlannedTrial]) -> Iterator[Event]:
        from concurrent.futures.process import BrokenProcessPool

        job, n = self._job(runner), self.config.n_workers()
        queue, suspects = deque(todo), deque[PlannedTrial]()
        held: list[PlannedTrial] = []
        deaths: dict[str, int] = {}
        pool = self._new_pool()
        flight: dict[cf.Future, PlannedTrial] = {}
        try:
            while queue or suspects or flight:
                # Suspects of a broken pool run alone, so a second break names its trial.
                while not flight and suspects:
                    t = suspects.popleft()
                    flight[pool.submit(run_unit, job, t)] = t
                while not suspects and queue and len(flight) < n:
                    t = queue.popleft()
                    flight[pool.submit(run_unit, job, t)] = t
                yield "started", f"{len(flight)} running: " + ", ".join(
                    label(t) for t in list(flight.values())[:2])
                finished, _ = cf.wait(flight, return_when=cf.FIRST_COMPLETED)
                broken = []
                for f in finished:
                    t = flight.pop(f)
                    try:
                        yield from self._outcome(runner, t, f.result(), held)
                    except BrokenProcessPool:
                        broken.append(t)
                if broken:  # every worker went down: the rest of the flight fails the same way
                    cf.wait(flight)
                    broken += list(flight.values())
                    flight.clear()
                    # Its workers are terminated after the futures fail: wait, so their claims
                    # are stale when forgiven.
                    pool.shutdown(wait=True, cancel_futures=True)
                    for t in broken:  # of several, none is to blame: their claims are forgiven
                        if len(broken) > 1:
                            runner.claims.forgive(t.key)
                            suspects.append(t)
                        elif (record := self._lost(runner, t, deaths)) is None:
                            suspects.append(t)
                        else:
                            yield "finished", record
                    pool = self._new_pool()
        finally:  # idle workers exit on their own; the run need not wait for JAX to tear down
            pool.shutdown(wait=False, cancel_futures=True)
        return held


class Dask(_Pool):
    """Dask distributed: a ``LocalCluster`` on 127.0.0.1, or the cluster at ``scheduler``."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        nanny = logging.getLogger("distributed.nanny")
        nanny.addFilter(_quiet_shutdown)
        self.client = connect(self.config)
        try:
            yield
        finally:
            cluster = self.client.cluster
            self.client.close()
            if cluster is not None and self.config.scheduler is None:
                cluster.close()
            nanny.removeFilter(_quiet_shutdown)

    def _pass(self, runner: Any, todo: list[PlannedTrial]) -> Iterator[Event]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        job = self._job(runner)  # small: sent with each task (scattered data dies with a worker)
        held: list[PlannedTrial] = []
        deaths: dict[str, int] = {}

        def submit(t: PlannedTrial, order: int) -> Any:
            # Higher priority first: trials go out in plan order, so a worker's split is reused.
            f = self.client.submit(run_unit, job, t, pure=False, priority=-order,
                                   key=f"trial-{t.key}-{uuid.uuid4().hex[:8]}")
            owner[f.key] = t
            return f

        owner: dict[str, PlannedTrial] = {}
        first = [submit(t, i) for i, t in enumerate(todo)]
        pending, suspects = as_completed(first), deque[PlannedTrial]()
        alone = {f.key for f in first} if len(first) == 1 else set()  # ran with none of ours
        for f in pending:
            t = owner.pop(f.key)
            try:
                yield from self._outcome(runner, t, f.result(), held)
            except (KilledWorker, cf.CancelledError) as e:  # its worker died (or its data)
                # A worker of several threads ran other trials too: none of them is to blame, so
                # each runs again alone; one that ran alone (or on one thread) is charged.
                worker = getattr(e, "last_worker", None)
                if worker is None:  # e.g. cancelled: nothing says it ran next to others
                    log.warning("%s: lost (%s) without the worker that ran it; charged an "
                                "attempt", label(t), type(e).__name__)
                threads = getattr(worker, "nthreads", 1) or 1
                if f.key not in alone and threads > 1:
                    runner.claims.forgive(t.key, died=getattr(worker, "pid", None))
                    suspects.append(t)
                elif (record := self._lost(runner, t, deaths)) is None:
                    again = submit(t, 0)
                    alone = {again.key} if len(owner) == 1 else set()
                    pending.add(again)
                else:
                    yield "finished", record
            if not owner and suspects:  # nothing else of ours runs: the next suspect, alone
                solo = submit(suspects.popleft(), 0)
                pending.add(solo)
                alone = {solo.key}
            yield "started", f"{len(owner)} queued or running on the cluster"
        return held


def _quiet_shutdown(record: logging.LogRecord) -> bool:
    """A worker whose JAX runtime takes a few seconds to exit is killed at shutdown: not news."""
    return "still alive after" not in record.getMessage()


def _refused_at_once(address: str, timeout_s: float) -> None:
    """Raise ConnectionRefusedError when nothing listens at a tcp:// address (the Dask client
    would retry for its whole timeout); other outcomes are left to the client."""
    from distributed.comm import get_address_host_port, parse_address

    if parse_address(address)[0] != "tcp":
        return
    with contextlib.suppress(socket.timeout, socket.gaierror):
        socket.create_connection(get_address_host_port(address), timeout=timeout_s).close()


def connect(config: ExecutorConfig) -> Any:
    """A Dask client: of the scheduler named, or of a new LocalCluster bound to 127.0.0.1 (its
    workers one task at a time, each with ``threads_per_worker`` JAX threads)."""
    import dask
    from distributed import Client, LocalCluster

    if config.scheduler is not None:
        try:
            _refused_at_once(config.scheduler, config.connect_timeout_s)
            return Client(config.scheduler, timeout=config.connect_timeout_s)
        except Exception as e:  # noqa: BLE001 - refused, timed out, or not a Dask scheduler
            raise ConfigError(f"cannot reach the Dask scheduler at {config.scheduler} within "
                              f"{config.connect_timeout_s:g} s ({type(e).__name__}); check the "
                              "address and that the scheduler runs, or leave out --scheduler to "
                              "start a local cluster") from None
    # A worker that dies is reported at once (KilledWorker): the retry policy is recbench's.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=config.n_workers(), threads_per_worker=1,
                               processes=True, host="127.0.0.1", dashboard_address=None,
                               memory_limit=config.memory_limit or "auto",
                               env=thread_env(config.threads_per_worker,
                                              shared=config.n_workers() > 1))
    return Client(cluster)
