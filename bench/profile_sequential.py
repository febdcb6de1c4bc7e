"""Where a sequential model's training step spends its time, on ML-100K's real sequences.

One jitted loss-and-gradient step of ``batch_size`` training rows (``training_rows`` of the whole
``u.data``), timed after compilation: wall and process CPU time (the CPU time is the steadier
number on a shared machine), XLA's FLOP count of the step (a ``lax.scan`` body is counted once:
see ``bench_sequential.uncounted_recurrence_flops``), the share of padded positions, and a float32
matmul throughput measured in the same process. Any config key can be set on the command line:

    nice -n 10 python bench/profile_sequential.py sasrec loss=sampled batch_size=256
    (the data from $RECBENCH_TEST_DATA, else ../shared/datasets)
"""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from recbench_builtin.models.sequential.caser import CaserConfig
from recbench_builtin.models.sequential.histories import training_rows
from recbench_builtin.models.sequential.rnn import LSTMConfig, RNNConfig
from recbench_builtin.models.sequential.sasrec import SASRecConfig
from recbench_builtin.models.sequential.training import _NextItemLoss

from recbench.api import Interactions

CONFIGS = {"sasrec": SASRecConfig, "gru4rec": RNNConfig, "lstm": LSTMConfig, "caser": CaserConfig}
# The shared datasets folder: $RECBENCH_TEST_DATA, else ../shared/datasets from the working directory.
DATA = Path(os.environ.get("RECBENCH_TEST_DATA", "../shared/datasets")) / "ml-100k" / "u.data"


def best_of(f, *args, reps: int = 3) -> tuple[float, float]:
    """(wall s, CPU s) of the fastest of ``reps`` calls after a warm-up call."""
    jax.block_until_ready(f(*args))
    wall = cpu = float("inf")
    for _ in range(reps):
        t, p = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(*args))
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - p)
    return wall, cpu


def main() -> None:
    name, settings = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
    cfg = CONFIGS[name](**{k: v if v.isalpha() else ast.literal_eval(v)
                           for k, v in settings.items()})
    a = np.loadtxt(DATA, dtype=np.int64)
    x = Interactions(a[:, 0] - 1, a[:, 1] - 1, int(a[:, 0].max()), int(a[:, 1].max()),
                     timestamp=a[:, 3])
    rows = training_rows(x, cfg.max_len, cfg.windows)
    net, b = cfg.network(x.n_users, x.n_items), cfg.batch_size
    batch = {k: jnp.asarray(v[:b]) for k, v in rows.items()}
    batch["mask"] = jnp.ones(b, jnp.float32)
    params = net.init(jax.random.key(0), batch["inputs"][:1], batch["user"][:1],
                      deterministic=True)["params"]
    step = jax.jit(jax.value_and_grad(_NextItemLoss(net, cfg.loss, cfg.negatives)))
    wall, cpu = best_of(step, params, batch, jax.random.key(1), None)
    cost = step.lower(params, batch, jax.random.key(1), None).compile().cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    m = jnp.ones((1024, 1024), jnp.float32)
    mm_wall, _ = best_of(jax.jit(lambda v: v @ v), m, reps=5)
    targets = int((rows["targets"] < x.n_items).sum())
    steps = -(-len(rows["user"]) // b)
    print(f"{name} {settings}: {len(rows['user'])} rows, {targets} targets, padding "
          f"{1 - targets / rows['targets'].size:.0%}; step {wall * 1e3:.0f} ms wall, "
          f"{cpu * 1e3:.0f} ms CPU; epoch of {steps} steps {wall * steps:.2f} s; "
          f"{flops / 1e9:.2f} GFLOP/step ({flops / wall / 1e9:.1f} GFLOP/s; matmul "
          f"{2 * 1024 ** 3 / mm_wall / 1e9:.1f}); load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
