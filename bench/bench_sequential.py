"""Sequential models' training speed at ML-1M size: compile time, epoch time, tokens/s, FLOP floor.

Data: the ``synthetic`` generator at ML-1M's shape (6,040 users x 3,706 items, ~1M interactions,
Markov signal on), so every user has a time-ordered sequence. Each model is fit with
``windows = "all"`` (every interaction is a next-item target once, in rows of ``max_len``: about
1M targets per epoch) and no validation, for ``--epochs`` epochs, and reports:

- compile: JAX tracing + compilation in the fit (``recbench.timing.CompileClock``), separate from
  the epoch time;
- epoch: ``fit_info["epoch_s"]``, the median wall time of the epochs after the first;
- tokens/s: real (non-padding) targets per epoch / epoch time;
- floor: the FLOPs of one training step as XLA counts them (``cost_analysis`` of the compiled
  value-and-gradient of the loss, one batch, plus the recurrence XLA does not count: see
  ``uncounted_recurrence_flops``) x the steps of an epoch, divided by the float32
  matrix-product throughput measured in the same run (a 2048 x 2048 x 2048 product): the time the
  epoch would take if every FLOP ran at matmul speed. ``epoch / floor`` is the overhead ratio.

Goals (issue 10): SASRec (2 blocks, d = 64, L = 50) <= 30 s per epoch, GRU4Rec <= 15 s, on the
2-core CPU. The load average is printed with each row: timings on a shared machine are noisy.

    nice -n 10 python bench/bench_sequential.py [--epochs 3 --models sasrec:softmax gru4rec:softmax]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate
from recbench_builtin.models.sequential.histories import training_rows
from recbench_builtin.models.sequential.losses import LOSSES
from recbench_builtin.models.sequential.caser import CaserConfig
from recbench_builtin.models.sequential.rnn import LSTMConfig, RNNConfig
from recbench_builtin.models.sequential.sasrec import SASRecConfig
from recbench_builtin.models.sequential.training import _NextItemLoss, SequentialModel

from recbench.specs import ModelContext
from recbench.timing import CompileClock

CONFIGS = {"sasrec": SASRecConfig, "gru4rec": RNNConfig, "lstm": LSTMConfig, "caser": CaserConfig}


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def step_flops(cfg, train, rows) -> float:
    """XLA's FLOP count of one training step's loss and gradient (one batch of rows)."""
    net = cfg.network(train.n_users, train.n_items)
    b = cfg.batch_size
    batch = {k: jnp.asarray(v[:b]) for k, v in rows.items()}
    batch["mask"] = jnp.ones(len(batch["user"]), jnp.float32)
    params = net.init(jax.random.key(0), batch["inputs"][:1], batch["user"][:1],
                      deterministic=True)["params"]
    loss = _NextItemLoss(net, cfg.loss, cfg.negatives)
    grad = jax.jit(jax.value_and_grad(loss))
    cost = grad.lower(params, batch, jax.random.key(1), None).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) + uncounted_recurrence_flops(cfg)


def uncounted_recurrence_flops(cfg) -> float:
    """XLA's cost analysis counts a loop body once, so a recurrent network's ``lax.scan`` over
    ``max_len`` positions is counted as one position: add the cell's matrix products of the other
    ``max_len - 1`` (forward and the two backward products, 2 FLOPs a multiply-add)."""
    if not isinstance(cfg, RNNConfig):
        return 0.0
    gates = 4 if cfg.cell == "lstm" else 3
    macs, width = 0, cfg.dim
    for _ in range(cfg.layers):
        macs += gates * (width * cfg.hidden + cfg.hidden * cfg.hidden)
        width = cfg.hidden
    return 3 * 2 * macs * cfg.batch_size * (cfg.max_len - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--per-user", type=int, default=165)  # ML-1M: 1,000,209 / 6,040
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--models", nargs="+", default=["sasrec:sampled", "gru4rec:sampled",
                                                    "sasrec:softmax", "gru4rec:softmax"])
    args = ap.parse_args()
    for entry in args.models:  # before any data is generated or model fitted
        name, _, loss = entry.partition(":")
        if name not in CONFIGS or loss not in LOSSES:
            ap.error(f"--models {entry!r}: expected MODEL:LOSS with MODEL one of "
                     f"{', '.join(CONFIGS)} and LOSS one of {', '.join(LOSSES)}")
    print(f"# sequential epoch benchmark: jax {jax.__version__}, {jax.devices()[0].device_kind}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    t = time.perf_counter()
    ds = generate(SyntheticConfig(n_users=args.users, n_items=args.items,
                                  mean_per_user=args.per_user, sequential=0.5))
    train = ds.interactions
    print(f"data: {train.n_users} users x {train.n_items} items, {len(train):,} interactions "
          f"(generated in {time.perf_counter() - t:.1f} s)")
    peak = matmul_flops_per_s()
    print(f"float32 matmul throughput: {peak / 1e9:.1f} GFLOP/s")
    print("| model | loss | rows | targets/epoch | compile s | epoch s | tokens/s | floor s | "
          "epoch/floor | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ctx = ModelContext(train.n_users, train.n_items)
    for entry in args.models:
        name, loss = entry.split(":")
        cfg = CONFIGS[name](loss=loss, windows="all", epochs=args.epochs,
                            batch_size=args.batch_size)
        rows = training_rows(train, cfg.max_len, cfg.windows)
        targets = int((rows["targets"] < train.n_items).sum())
        with CompileClock() as clock:
            fitted = SequentialModel(cfg, ctx).fit(train, key=jax.random.key(0))
        epoch_s = float(fitted.fit_info["epoch_s"])
        steps = -(-len(rows["user"]) // cfg.batch_size)
        floor = step_flops(cfg, train, rows) * steps / peak
        print(f"| {name} | {loss} | {len(rows['user']):,} | {targets:,} | {clock.seconds():.1f} | "
              f"{epoch_s:.1f} | {targets / epoch_s:,.0f} | {floor:.2f} | {epoch_s / floor:.1f} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
