"""NeuMF training speed against its FLOP floor, on the default experiment's data.

Data: the default experiment's dataset (embedded ``online-retail``), preprocessed and split exactly
as ``recbench run`` does for seed 0 (default protocol: dedup, random 8:1:1 per user). Reports:

- flops: forward + backward FLOPs per (user, item) pair of the GMF + MLP towers (matrix products
  only: 2 per multiply-add; the backward pass of a dense layer costs twice its forward, except the
  first layer's input gradient, which is needed for the embedding gradients and is counted too);
  FLOPs per epoch = pairs per epoch (training rows x (1 + negatives)) x FLOPs per pair;
- throughput: GFLOP/s of a jitted float32 matmul chain with the shapes of one training step
  (forward, input-gradient and weight-gradient products of each layer), measured in this run;
- floor: FLOPs per epoch / that throughput, the epoch time if only the matrix products cost;
- dense: one epoch of the same network on dense random inputs with plain SGD (no gathers, no
  negative sampling, no Adam), the cost of the towers as XLA runs them here;
- neumf: the median epoch (after the first, which compiles) of the built-in model (default config unless overridden)
  trained without validation, so every timed epoch is a training epoch;
- validation: one early-stopping validation call (full-ranking NDCG@10 on the validation part)
  and its share of an epoch: fit_loop validates after every ``eval_every`` epochs.

Compare ratios within one run: the machine is shared, the load average is printed.

    python bench/bench_neumf.py [--epochs 4] [--config '{"negatives": 1}'] [--full]

``--full`` also runs one complete default fit with early stopping and prints its epochs run, best
epoch, training and validation time (what the default ``recbench run`` pays for NeuMF).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
from recbench_builtin.metrics import NDCG

from recbench import Interactions
from recbench.api import fit_info, ranking_validator
from recbench.config import Experiment, from_mapping
from recbench.plugins import load_plugins
from recbench.preprocess import apply as preprocess
from recbench.random import derive_key, derive_rng
from recbench.registry import Registry
from recbench.specs import LoadContext, ModelContext


def default_split(registry: Registry) -> tuple[str, Any]:
    """The default experiment's dataset and its seed-0 split, as the runner makes them."""
    exp = Experiment()
    dc, p = exp.datasets[0], exp.protocol
    spec = registry.dataset(dc.name)
    cfg = from_mapping(spec.config, dc.config)
    from recbench.datacache import default_cache_dir, load

    ds = preprocess(load(spec, cfg, LoadContext(None, default_cache_dir())), p.preprocess)
    sspec = registry.splitter(p.split.name)
    scfg = from_mapping(sspec.config, p.split.config)
    data = ds if sspec.takes_dataset else ds.interactions
    return ds.name, sspec.split(data, scfg, derive_rng(0, "split", ds.name, ds.checksum))


def flops_per_pair(gmf: int, mlp: int, layers: tuple[int, ...]) -> int:
    dims = (2 * mlp, *layers)
    dense = sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))  # forward products
    out = 2 * (gmf + dims[-1])
    return 3 * (dense + out) + gmf * 3  # backward = 2x forward; the GMF product and its grads


def _timed(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_gflops(rows: int, dims: tuple[int, ...], repeats: int = 5) -> float:
    """GFLOP/s of the forward, input-gradient and weight-gradient products of one step."""
    keys = jax.random.split(jax.random.key(0), 2 * len(dims))
    xs = [jax.random.normal(keys[i], (rows, d), jnp.float32) for i, d in enumerate(dims)]
    ws = [jax.random.normal(keys[len(dims) + i], (a, b), jnp.float32)
          for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]

    @jax.jit
    def chain(xs, ws):
        acc = jnp.float32(0)
        for i, w in enumerate(ws):
            y = xs[i] @ w  # forward        [rows, a] @ [a, b]
            dx = xs[i + 1] @ w.T  # input grad     [rows, b] @ [b, a]
            dw = xs[i].T @ xs[i + 1]  # weight grad    [a, rows] @ [rows, b]
            acc = acc + y[0, 0] + dx[0, 0] + dw[0, 0]
        return acc

    flops = sum(3 * 2 * rows * a * b for a, b in zip(dims[:-1], dims[1:]))
    return flops / _timed(chain, xs, ws, repeats=repeats) / 1e9


def dense_epoch_s(n_batches: int, rows: int, gmf: int, mlp: int, layers: tuple[int, ...],
                  repeats: int = 3) -> float:
    """One epoch of the towers' forward + backward + SGD on dense inputs (no gathers)."""
    dims = (2 * mlp, *layers)
    k = jax.random.split(jax.random.key(1), len(dims) + 3)
    params = {"w": [0.05 * jax.random.normal(k[i], (a, b)) for i, (a, b) in
                    enumerate(zip(dims[:-1], dims[1:]))],
              "b": [jnp.zeros(b) for b in dims[1:]],
              "out": 0.05 * jax.random.normal(k[-1], (gmf + dims[-1],))}
    x_mlp = jax.random.normal(k[-2], (rows, dims[0]))
    x_gmf = jax.random.normal(k[-3], (rows, 2, gmf))
    label = (jnp.arange(rows) % 2).astype(jnp.float32)

    def loss(p, x_mlp, x_gmf):
        h = x_mlp
        for w, b in zip(p["w"], p["b"]):
            h = jax.nn.relu(h @ w + b)
        z = jnp.concatenate([x_gmf[:, 0] * x_gmf[:, 1], h], -1) @ p["out"]
        return jnp.mean(jnp.maximum(z, 0) - z * label + jnp.log1p(jnp.exp(-jnp.abs(z))))

    @jax.jit
    def epoch(p, x_mlp, x_gmf):
        def step(p, _):
            g = jax.grad(loss, argnums=(0, 1, 2))(p, x_mlp, x_gmf)
            # the input gradients stand in for the embedding gradients (kept alive below)
            p = jax.tree.map(lambda a, da: a - 0.01 * da, p, g[0])
            return p, g[1][0, 0] + g[2][0, 0, 0]
        return jax.lax.scan(step, p, None, length=n_batches)

    return _timed(epoch, params, x_mlp, x_gmf, repeats=repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4, help="training epochs timed (no validation)")
    ap.add_argument("--config", type=json.loads, default={},
                    help="NeuMF config overrides as JSON, e.g. '{\"negatives\": 1}'")
    ap.add_argument("--full", action="store_true",
                    help="also run one complete fit with early stopping (slow)")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense-network floor")
    args = ap.parse_args()

    print(f"# NeuMF epoch benchmark: jax {jax.__version__}, {jax.devices()[0].device_kind}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    registry = Registry.build(load_plugins(allow=set()))
    name, split = default_split(registry)
    train: Interactions = split.train
    print(f"data: {name}, seed-0 split: {train.n_users} users x {train.n_items} items, "
          f"{len(train):,} training rows, {len(split.valid):,} validation rows")

    spec = registry.model("neumf")
    cfg = from_mapping(spec.config, {**args.config, "epochs": args.epochs})
    layers = tuple(cfg.layers)
    per_pair = flops_per_pair(cfg.gmf_factors, cfg.mlp_factors, layers)
    batch = min(cfg.batch_size, len(train))
    n_batches = -(-len(train) // batch)
    rows_per_step = batch * (1 + cfg.negatives)
    pairs = n_batches * rows_per_step
    epoch_flops = pairs * per_pair
    print(f"config: {json.dumps({k: getattr(cfg, k) for k in ('gmf_factors', 'mlp_factors', 'layers', 'negatives', 'batch_size', 'dropout')}, default=list)}")
    print(f"flops: {per_pair:,} per pair (fwd+bwd), {pairs:,} pairs per epoch "
          f"({n_batches} steps x {rows_per_step} rows) = {epoch_flops / 1e9:.1f} GFLOP per epoch")

    gflops = matmul_gflops(rows_per_step, (2 * cfg.mlp_factors, *layers))
    floor = epoch_flops / (gflops * 1e9)
    print(f"throughput: {gflops:.1f} GFLOP/s (jitted float32 matmuls of one step's shapes); "
          f"floor {floor:.3f} s per epoch")
    dense = None
    if not args.no_dense:
        dense = dense_epoch_s(n_batches, rows_per_step, cfg.gmf_factors, cfg.mlp_factors, layers)
        print(f"dense: {dense:.3f} s per epoch (same towers on dense inputs, SGD, no gathers)")

    ctx = ModelContext(train.n_users, train.n_items)
    key = derive_key(0, "model", "neumf", name)
    t = time.perf_counter()
    fitted = spec.factory(cfg, ctx).fit(train, key=key)
    wall = time.perf_counter() - t
    info = fit_info(fitted)
    epoch_s = float(info["epoch_s"])
    print(f"neumf: epoch median {epoch_s:.3f} s (epochs 2..{args.epochs}; fit wall {wall:.1f} s "
          f"incl. compile); {epoch_s / floor:.2f}x the matmul floor"
          + (f", {epoch_s / dense:.2f}x the dense network" if dense else ""))

    validate = ranking_validator(lambda p: fitted, train, split.valid, metric=NDCG,
                                 k=cfg.valid_k)
    validate(None)  # compile
    times = []
    for _ in range(3):
        t = time.perf_counter()
        validate(None)
        times.append(time.perf_counter() - t)
    v = statistics.median(times)
    print(f"validation: {v:.3f} s per call (NDCG@{cfg.valid_k}, {len(split.valid):,} rows) = "
          f"{v / epoch_s:.2f} of an epoch")

    if args.full:
        full_cfg = from_mapping(spec.config, args.config)
        t = time.perf_counter()
        fitted = spec.factory(full_cfg, ctx).fit(train, valid=split.valid, key=key)
        wall = time.perf_counter() - t
        info = fit_info(fitted)
        print(f"full fit: {wall:.1f} s wall, " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
