"""Start-up cost: what a fresh process spends before and around a trial with nothing to fit.

Each stage runs in its own fresh Python process, ``--repeats`` times, stages interleaved round by
round (so each stage's median is from the same moments as the others'); a stage includes the ones
above it, and "adds" is its median minus the previous stage's. The last stage is a whole
``recbench run`` of most-popular on ML-100K (80/20 random split, cold caches: nothing compiled or
parsed kept), the process whose wall Cornac's MostPop is compared with in ``side_by_side.py``.

    python bench/bench_startup.py --repeats 5 [--data-dir ../shared/datasets]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ("from recbench.plugins import load_plugins; from recbench.registry import Registry; "
            "Registry.build(load_plugins())")
STAGES = [
    ("interpreter", "pass"),
    ("numpy", "import numpy"),
    ("jax", "import jax"),
    ("import recbench", "import recbench"),
    ("import recbench.cli", "import recbench.cli"),
    ("+ plugins and registry", "import recbench.cli; " + REGISTRY),
]
EXPERIMENT = """name = "startup-most-popular"
seeds = [0]
[[datasets]]
name = "ml-100k"
[[models]]
name = "most-popular"
[protocol]
task = "ranking"
metrics = ["ndcg"]
ks = [10]
[protocol.split]
name = "ratio"
config = { ratios = [0.8, 0.2] }
"""


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recbench-startup-"))
    (work / "most-popular.toml").write_text(EXPERIMENT)
    run = [sys.executable, "-m", "recbench", "run", str(work / "most-popular.toml"),
           "--data-dir", str(args.data_dir), "--format", "json", "-q"]
    stages = [(name, [sys.executable, "-c", code]) for name, code in STAGES]
    stages.append(("recbench run most-popular (ML-100K 80/20)", run))
    times: dict[str, list[float]] = {name: [] for name, _ in stages}
    print(f"load average at start: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{args.repeats} rounds; python {sys.version.split()[0]}")
    for round_ in range(args.repeats):
        for name, cmd in stages:
            # cold: each round's run parses into a fresh cache (the other stages read no data)
            env = {**os.environ, "RECBENCH_CACHE_DIR": str(work / f"cache-{round_}")}
            if cmd is run:
                cmd = [*cmd, "--results", str(work / f"results-{round_}")]
            times[name].append(wall(cmd, env))
    print(f"{'stage':<44} {'median s':>9} {'min s':>7} {'adds s':>7}")
    previous = 0.0
    for name, _ in stages:
        median = statistics.median(times[name])
        print(f"{name:<44} {median:9.3f} {min(times[name]):7.3f} {median - previous:7.3f}")
        previous = median
    print(f"load average at end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
