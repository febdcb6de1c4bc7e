"""What runs inside a worker process: one trial at a time, through a runner rebuilt once per process.

A :class:`Job` is everything a worker needs to rebuild the coordinator's runner (the experiment, the
run options, which plugins to load); it is small and picklable. The unit shipped per task is
``(job, trial)``: one trial, so claims, retries and failures are exact per trial, while the worker
keeps its last dataset and split, which the executors exploit by handing out trials in (dataset,
seed, model) order. Workers load data through the same binary cache and write into the same
result store as the coordinator.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from .config import Experiment
from .errors import ConfigError
from .records import PlannedTrial, TrialRecord

# One thread for XLA's CPU (Eigen) pool; XLA has no flag for N threads, so N > 1 is set by the CPU
# affinity mask, whose size XLA takes as its pool size.
SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"
PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"


@dataclass(frozen=True)
class Job:
    experiment: Experiment
    options: Any  # recbench.runner.RunOptions, its paths absolute
    plugin_paths: tuple[str, ...]
    plugins_allowed: frozenset[str]
    threads: int
    token: str  # one run: a worker serving several runs keeps one runner per run
    compilation_cache: tuple[str, float] | None = None  # the coordinator's persistent XLA cache
    # (directory, least compile time cached), shared
    training_log: bool = False  # -v: workers print the training loop's lines on their stderr

    @classmethod
    def of(cls, runner: Any, threads: int, token: str) -> Job:
        """The job of ``runner``'s run; plugins registered as in-process objects cannot travel."""
        infos = runner.registry.host.plugins
        objects = [p.name for p in infos if p.source == "object"]
        if objects:
            raise ConfigError(f"plugins {objects} were registered in this process and cannot be "
                              "loaded by worker processes; put them in a file and pass --plugin "
                              "FILE, or install them, or use --executor serial")
        o = runner.options
        options = replace(o, results_dir=o.results_dir.resolve(), cache_dir=o.cache_dir.resolve(),
                          data_dir=o.data_dir.resolve() if o.data_dir else None,
                          echo_trial_output=False)
        return cls(runner.experiment, options,
                   tuple(str(os.path.abspath(p.distribution[len("file:"):]))
                         for p in infos if p.source == "path"),
                   frozenset(p.name for p in infos if p.source == "entry-point"), threads, token,
                   _compilation_cache(), logging.NOTSET < _training_log().level <= logging.INFO)


def _training_log() -> logging.Logger:
    from .train import log

    return log


def _show_training_log() -> None:
    """-v in a worker: the training loop's lines on this process's stderr (the coordinator's
    terminal for local workers, the worker's log on a cluster) besides each trial's log."""
    log = _training_log()
    if not any(getattr(h, "recbench_worker", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.__stderr__)
        handler.recbench_worker = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("  %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def _compilation_cache() -> tuple[str, float] | None:
    import jax

    where = jax.config.jax_compilation_cache_dir
    return (where, jax.config.jax_persistent_cache_min_compile_time_secs) if where else None


def thread_env(threads: int, shared: bool = False) -> dict[str, str]:
    """Environment for a worker process started fresh (set before JAX starts its backend).
    ``shared``: other workers run on this machine, so no worker may take most of a GPU's memory
    up front (JAX preallocates 75% of it); a value the user set is kept."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and SINGLE_THREAD_FLAG not in flags:
        flags = f"{flags} {SINGLE_THREAD_FLAG}".strip()
    env = {"XLA_FLAGS": flags, "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if shared:
        env[PREALLOCATE] = os.environ.get(PREALLOCATE, "false")
    return env


_limited: list[int] = []


def limit_threads(threads: int, slot: int | None, shared: bool = False) -> None:
    """Keep this process to ``threads`` cores: XLA's flags (effective if JAX has not started yet),
    BLAS pools through threadpoolctl, and, given this worker's ``slot``, a CPU affinity of
    ``threads`` cores of its own."""
    if _limited:
        return
    _limited.append(threads)
    os.environ.update(thread_env(threads, shared))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    cores = sorted(os.sched_getaffinity(0))
    if slot is not None and threads < len(cores):
        first = (slot * threads) % len(cores)
        os.sched_setaffinity(0, (cores * 2)[first:first + threads])


_slots: Any = None  # this pool's count of started workers (set by init_process)


def init_process(threads: int, slots: Any, shared: bool = False) -> None:
    """ProcessPoolExecutor initializer: the next free slot, then the thread limits."""
    global _slots
    _slots = slots
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    limit_threads(threads, slot, shared)


def await_workers(n: int, timeout_s: float = 120.0) -> int:
    """A pool task that returns once ``n`` workers of its pool have started (or after
    ``timeout_s``): ``n`` of them at once make the pool start all its workers."""
    deadline = time.monotonic() + timeout_s
    while _slots is not None and _slots.value < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


_runners: dict[str, Any] = {}
_registries: dict[tuple, Any] = {}


def runner_for(job: Job) -> Any:
    """This process's runner for ``job`` (built once: validation, plugin loading)."""
    if job.token not in _runners:
        from . import provenance
        from .plugins import load_plugins
        from .registry import Registry
        from .runner import Runner

        import jax

        _runners.clear()  # one run's runner at a time: it holds a dataset in memory
        if job.compilation_cache:
            where, least_s = job.compilation_cache
            jax.config.update("jax_compilation_cache_dir", where)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", least_s)
        # Plugins load once per process (seconds): again only when a plugin file changed.
        plugins = (job.plugin_paths, job.plugins_allowed,
                   tuple(provenance.file_code(p) for p in job.plugin_paths))
        if plugins not in _registries:
            _registries.clear()
            _registries[plugins] = Registry.build(load_plugins(paths=job.plugin_paths,
                                                               allow=set(job.plugins_allowed)))
        if job.training_log:
            _show_training_log()
        _runners[job.token] = Runner(job.experiment, _registries[plugins], job.options)
    return _runners[job.token]


def run_unit(job: Job, trial: PlannedTrial) -> TrialRecord | dict[str, Any]:
    """Run one trial in this worker: its record, or the details of the live process holding it."""
    import jax

    slot = None
    try:
        from distributed import get_worker

        name = get_worker().name
        slot = name if isinstance(name, int) else None
    except (ImportError, ValueError):  # not a Dask worker (a process pool's: slot already set)
        pass
    limit_threads(job.threads, slot)
    runner = runner_for(job)
    with jax.default_device(runner.device):
        return runner.execute(trial)
