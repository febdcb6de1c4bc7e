"""ML-20M-size run: BPR and low-rank EASE fits, full-ranking evaluation against its floor, memory.

Data: the built-in ``synthetic`` generator at ML-20M size (138,493 users x 26,744 items, ~20M
interactions, log-normal activity with sigma 1), split per user 80/20 by the built-in ``ratio``
splitter. Sections (``--sections``, in this order):

- ``bpr``: the built-in ``bpr`` (64 factors) for ``--epochs`` epochs without validation, batch
  ``--bpr-batch-size`` (default 32,768, not the model's 2,048: every Adam step updates the whole
  embedding tables, 10.6M parameters and their two moments at this size, so an epoch of 2,048-row
  steps is ~7,900 passes over ~340 MB, which dominates the epoch): fit time, compile time,
  median epoch;
- ``eval``: full-ranking evaluation (every item, training items masked, top-20, Recall and NDCG
  @10 and @20) of a 64-d embedding model (the BPR fit when it ran, else random embeddings) by
  ``evaluate_ranking``, next to the floor measured in the same run: one jitted function per batch
  (gather + GEMM, seen items set to -inf by a flat scatter, ``lax.top_k``), the same batch size,
  every user; users per second of both (compile excluded);
- ``ease``: ``ease-lowrank`` (rank ``--ease-rank``) fit time (EASE's exact 26,744^2 inverse is
  ~40 TFLOP and 3 GB per matrix: it does not fit this machine comfortably).

Memory: peak host RSS (the process's high-water mark after each section, so it includes the
data), current RSS, and the device's peak bytes in use where the backend reports it (GPU/TPU;
the CPU backend reports nothing, so the live JAX buffers after the section are given instead,
plus the evaluator's score buffer bound: batch x n_items float32).

    nice -n 10 python bench/bench_scale.py [--size ml-20m|ml-1m|small] [--sections bpr eval ease]
                                           [--epochs 2 --bpr-batch-size 32768 --batch-size 1024
                                            --ease-rank 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_evaluate import floor_jax, floor_jax_inputs  # noqa: E402

from recbench.evaluate import evaluate_ranking  # noqa: E402
from recbench.specs import ModelContext  # noqa: E402
from recbench.timing import CompileClock  # noqa: E402

SIZES = {
    "small": {"n_users": 2_000, "n_items": 1_000, "mean_per_user": 40},
    "ml-1m": {"n_users": 6_040, "n_items": 3_706, "mean_per_user": 166},
    "ml-20m": {"n_users": 138_493, "n_items": 26_744, "mean_per_user": 145},
}
SECTIONS = ("bpr", "eval", "ease")


def rss_mb() -> float:
    """Current resident set size (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_memory() -> dict[str, float]:
    """Peak bytes in use on the first device where the backend reports it, else the bytes of the
    live JAX arrays now (MiB)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"device_peak_mb": stats["peak_bytes_in_use"] / 2**20}
    return {"device_live_mb": sum(a.nbytes for a in jax.live_arrays()) / 2**20}


def memory() -> dict[str, float]:
    return {"peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb(), **device_memory()}


def make_dataset(size: str, seed: int = 0):
    """The built-in synthetic dataset at ``size`` (log-normal activity, sigma 1) and its 80/20
    per-user ratio split: ``(dataset, train, test)``."""
    from recbench_builtin.datasets.synthetic import SyntheticConfig, generate
    from recbench_builtin.splitting.protocols import RatioConfig, ratio

    ds = generate(SyntheticConfig(**SIZES[size], activity_spread=1.0, seed=seed))
    split = ratio(ds.interactions, RatioConfig((0.8, 0.2)), np.random.default_rng(seed))
    return ds, split.train, split.test


def fit_bpr(train, epochs: int, batch_size: int) -> tuple[object, dict]:
    from recbench_builtin.models.factorization import BPRConfig, BPRModel

    ctx = ModelContext(train.n_users, train.n_items)
    cfg = BPRConfig(epochs=epochs, batch_size=batch_size)
    t0 = time.perf_counter()
    with CompileClock() as clock:
        fitted = BPRModel(cfg, ctx).fit(train, key=jax.random.key(0))
        jax.block_until_ready(fitted.user_emb)
    return fitted, {"fit_s": time.perf_counter() - t0, "compile_s": clock.seconds(),
                    "epoch_s": fitted.fit_info["epoch_s"], "epochs": epochs,
                    "batch_size": batch_size, "interactions": len(train)}


def random_embeddings(train, dim: int = 64):
    from recbench_builtin.models.factorization import EmbeddingFitted

    rng = np.random.default_rng(1)
    return EmbeddingFitted(
        jnp.asarray(rng.standard_normal((train.n_users, dim)) / np.sqrt(dim), jnp.float32),
        jnp.asarray(rng.standard_normal((train.n_items, dim)) / np.sqrt(dim), jnp.float32))


def evaluate_vs_floor(fitted, train, test, batch_size: int, k: int = 20) -> dict:
    """``evaluate_ranking`` of ``fitted`` and the GEMM + mask + top-k floor over the same
    embeddings: wall seconds, compile seconds and users per second (compile excluded) of both."""
    from recbench_builtin.metrics import METRICS

    metrics = [m for m in METRICS if m.name in ("recall", "ndcg")]
    u, i = fitted.user_emb, fitted.item_emb
    inputs = floor_jax_inputs(train.csr, train.n_users, batch_size)
    t0 = time.perf_counter()
    with CompileClock() as floor_clock:
        floor_jax(u, i, inputs, k)
    floor_s = time.perf_counter() - t0 - floor_clock.seconds()
    del inputs
    t0 = time.perf_counter()
    result = evaluate_ranking(fitted, train=train, test=test, metrics=metrics, ks=(10, k),
                              batch_size=batch_size)
    total = time.perf_counter() - t0
    steady = total - result.timings["eval_compile_s"]
    n_users = result.counts["users_evaluated"]
    return {"users": n_users, "batch_size": batch_size, "k": k,
            "recbench_s": steady, "recbench_compile_s": result.timings["eval_compile_s"],
            "recbench_users_per_s": n_users / steady,
            "floor_s": floor_s, "floor_compile_s": floor_clock.seconds(),
            "floor_users_per_s": train.n_users / floor_s,
            "ratio": (steady / n_users) / (floor_s / train.n_users),
            "score_s": result.timings["score_s"], "rank_s": result.timings["rank_s"],
            "metrics_s": result.timings["metrics_s"],
            "score_buffer_mb": batch_size * train.n_items * 4 / 2**20,
            **{f"{name}": round(v, 4) for name, v in result.metrics.items()}}


def fit_ease_lowrank(train, rank: int) -> dict:
    from recbench_builtin.models.linear import LowRankEASEConfig, LowRankEASEModel

    t0 = time.perf_counter()
    with CompileClock() as clock:
        fitted = LowRankEASEModel(LowRankEASEConfig(rank=rank)).fit(train, key=jax.random.key(0))
    return {"fit_s": time.perf_counter() - t0, "compile_s": clock.seconds(), "rank": rank,
            "weights_mb": 2 * fitted.left.nbytes / 2**20}


def run(size: str, sections: tuple[str, ...] = SECTIONS, *, epochs: int = 2,
        bpr_batch_size: int = 32_768, batch_size: int = 1024, ease_rank: int = 256,
        log=print) -> dict[str, dict]:
    """Every chosen section at ``size``; one dict of numbers per section (and ``data``), each
    also passed to ``log`` as one JSON line when it is done."""
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    _, train, test = make_dataset(size)
    out["data"] = {"size": size, "users": train.n_users, "items": train.n_items,
                   "train": len(train), "test": len(test), "seconds": time.perf_counter() - t0,
                   **memory()}
    log(json.dumps({"data": out["data"]}))
    fitted = None
    if "bpr" in sections:
        fitted, out["bpr"] = fit_bpr(train, epochs, bpr_batch_size)
        out["bpr"].update(memory())
        log(json.dumps({"bpr": out["bpr"]}))
    if "eval" in sections:
        out["eval"] = evaluate_vs_floor(fitted or random_embeddings(train), train, test,
                                        batch_size)
        out["eval"].update(memory())
        log(json.dumps({"eval": out["eval"]}))
    del fitted
    if "ease" in sections:
        out["ease"] = fit_ease_lowrank(train, ease_rank)
        out["ease"].update(memory())
        log(json.dumps({"ease": out["ease"]}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="ml-20m")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--bpr-batch-size", type=int, default=32_768)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--ease-rank", type=int, default=256)
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"# jax {jax.__version__} on {jax.default_backend()} x{jax.device_count()}, "
          f"{os.cpu_count()} CPUs, load {load:.1f}")
    done: dict = {}

    def log(line: str) -> None:
        # Written after every section, so a run stopped part-way keeps what it measured.
        print(line, flush=True)
        done.update(json.loads(line), load={"start": load, "end": os.getloadavg()[0]})
        if args.json:
            args.json.write_text(json.dumps(done, indent=1))

    run(args.size, tuple(args.sections), epochs=args.epochs, bpr_batch_size=args.bpr_batch_size,
        batch_size=args.batch_size, ease_rank=args.ease_rank, log=log)
    print(f"# load {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
