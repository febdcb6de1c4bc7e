"""A test-only model plugin for the executor tests (loaded with ``--plugin`` / ``paths=``).

``flaky-popular`` ranks by popularity, and can misbehave the way real trials do on a cluster:
``deaths`` times it SIGKILLs the worker process it runs in (counted by files in ``marker_dir``, -1:
always), ``hog_mb`` allocates that much memory before fitting (past a worker's memory limit),
``wait_for`` makes it start only once a file appears in that directory (so two trials overlap),
``sleep_s`` makes it slow, ``hang_once`` makes its first fit hang (until its process is killed),
``say`` prints a line and logs it at INFO (for the trial's log). It never kills the process named
by ``RECBENCH_TEST_MAIN_PID`` (the test runner itself): there it raises instead.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import Interactions, ModelSpec, UserBatch, hookimpl


@dataclass(frozen=True)
class FlakyConfig:
    marker_dir: str = ""
    deaths: int = 0
    hog_mb: int = 0
    sleep_s: float = 0.0
    wait_for: str = ""  # a directory: sleep_s counts from when a file appears there
    hang_once: str = ""  # a directory: the first fit (none before it left a mark) hangs
    say: str = ""


@jax.jit
def _broadcast(popularity: jax.Array, users: jax.Array) -> jax.Array:
    return jnp.broadcast_to(popularity, (users.shape[0], popularity.shape[0]))


@dataclass(frozen=True)
class FlakyFitted:
    popularity: jax.Array

    def score(self, batch: UserBatch) -> jax.Array:
        return _broadcast(self.popularity, batch.users)


def _die() -> None:
    if os.environ.get("RECBENCH_TEST_MAIN_PID") == str(os.getpid()):
        raise RuntimeError("flaky-popular would kill the test process: run it on workers")
    os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class FlakyModel:
    config: FlakyConfig

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> FlakyFitted:
        c = self.config
        deadline = time.monotonic() + 60
        while c.wait_for and not any(Path(c.wait_for).glob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        if c.say:
            print(c.say)
            logging.getLogger("recbench.train").info("said %s", c.say)  # as the epochs are
        if c.deaths:
            marks = Path(c.marker_dir)
            marks.mkdir(parents=True, exist_ok=True)
            seen = len(list(marks.iterdir()))
            (marks / f"{seen}-{os.getpid()}").touch()
            if c.deaths < 0 or seen < c.deaths:
                time.sleep(0.2)  # mid-trial: the claim is written, the record is not
                _die()
        hog = []
        for _ in range(c.hog_mb // 100):  # in steps, so the worker's memory monitor sees it grow
            hog.append(np.empty(100 << 20, np.uint8))
            hog[-1][::4096] = 1  # one byte per page: resident, at little CPU
            time.sleep(0.01)
        if c.hog_mb and os.environ.get("RECBENCH_TEST_MAIN_PID") != str(os.getpid()):
            time.sleep(5)  # the monitor's next look
            _die()  # the limit did not stop it: die anyway, as the OS would
        if c.hang_once and not (Path(c.hang_once) / "hung").exists():
            Path(c.hang_once).mkdir(parents=True, exist_ok=True)
            (Path(c.hang_once) / "hung").touch()
            time.sleep(30)  # until a neighbour's death takes this process down too
        time.sleep(c.sleep_s)
        return FlakyFitted(jnp.asarray(train.item_counts, jnp.float32))


@hookimpl
def register_models():
    return [ModelSpec("flaky-popular", "baseline", frozenset({"ranking"}),
                      lambda config, ctx: FlakyModel(config), config=FlakyConfig)]
