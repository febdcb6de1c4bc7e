"""Serial vs process pool vs Dask on one small grid: the wall time of the same ``Runner.run``.

The grid: 3 models (most-popular, item-knn, EASE) x 4 seeds on a synthetic dataset of ML-100k size
(943 users x 1,682 items), each executor into its own fresh result store, so every trial runs.
The pool executors pay for starting their workers (each imports JAX and the plugins and compiles
its own functions) and win back time only when trials outnumber and outlast that start; with 2
cores and 2 workers the ratio says how much of it they win back. ``bench/run_all.py`` imports
:func:`measure`.

    python bench/bench_executors.py [--workers 2 --seeds 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from recbench.config import Experiment, from_mapping
from recbench.executors import ExecutorConfig, make_executor
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner

MODELS = ("most-popular", "item-knn", "ease")
EXECUTORS = ("serial", "processes", "dask")


def grid(seeds: int) -> Experiment:
    return from_mapping(Experiment, {
        "name": "bench-executors", "seeds": list(range(seeds)),
        "datasets": [{"name": "synthetic", "config": {"n_users": 943, "n_items": 1682,
                                                      "mean_per_user": 100}}],
        "models": [{"name": m} for m in MODELS],
        "protocol": {"metrics": ["ndcg", "recall"], "ks": [10]}})


def measure(workers: int = 2, seeds: int = 4) -> dict[str, float | int]:
    """Seconds of one run of the grid per executor (``<executor>_s``), with the worker count,
    the trial count and the cores of this machine; every run into a fresh result store."""
    reg = Registry.build(load_plugins(allow=set()))
    exp = grid(seeds)
    out: dict[str, float | int] = {"workers": workers, "trials": len(MODELS) * seeds,
                                   "cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="recbench-bench-executors-") as tmp:
        for kind in EXECUTORS:
            config = ExecutorConfig(kind, workers=None if kind == "serial" else workers)
            t0 = time.perf_counter()
            records = Runner(exp, reg, RunOptions(Path(tmp) / kind)).run(make_executor(config))
            out[f"{kind}_s"] = time.perf_counter() - t0
            failed = [r for r in records if r["status"] != "ok"]
            if failed:
                raise RuntimeError(f"{kind}: {len(failed)} trials failed: {failed[0].get('error')}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    r = measure(args.workers, args.seeds)
    print(f"{r['trials']} trials, {r['workers']} workers, {r['cores']} cores, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| executor | wall s | vs serial |\n|---|---:|---:|")
    for kind in EXECUTORS:
        print(f"| {kind} | {r[f'{kind}_s']:.1f} | {r[f'{kind}_s'] / r['serial_s']:.2f}x |")


if __name__ == "__main__":
    main()
