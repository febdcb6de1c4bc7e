"""Closed-form and neighbourhood models at ML-1M size: EASE, item-kNN, user-kNN and iALS.

Synthetic data of ML-1M's shape (6,040 users x 3,706 items, ~1M training interactions with
log-normal user activity and Zipf-like item popularity; a per-user 8:1 train/test cut), generated
from a fixed numpy seed. Each model runs in its own child process (so each gets its own peak RSS)
and is measured, in the same run:

- ``ease``:     fit (Gram + inverse) + full-ranking evaluation (``evaluate_ranking``,
                NDCG/Recall@10, seen items masked); goal <= 1.5 s steady state (BENCHMARKS.md);
- ``item-knn``: fit (Gram + similarity + top-k pruning) + full evaluation; goal <= 1 s;
- ``user-knn``: fit + full evaluation (no published goal; neighbours are found at score time);
- ``ials``:     one training epoch (users then items, exact solves, loss); goal <= 1 s;

next to a plain numpy/scipy reference of the same computation where one exists (EASE and item-kNN:
BLAS Gram, LAPACK Cholesky inverse / argpartition pruning, one numpy GEMM + argpartition top-k over
all users), so the ratio is measured on the same machine at the same time.

Compile time (JAX tracing + compilation during the first call, from a
``recbench.timing.CompileClock`` around it: fit + evaluation, for iALS a first one-epoch fit) is
reported apart from the steady state: for EASE and kNN the median of ``--repeats`` further calls
with the same shapes (the best of them is printed too, as the machine is shared); for iALS the
refit's ``fit_info["epoch_s"]``, the median of its ``--repeats + 1`` epochs after the first. The
steady calls' backend compilations are counted (0 expected: same shapes compile nothing). The goal
verdict uses the median. Peak RSS is the child's
``ru_maxrss`` before the numpy reference runs; "data RSS" is the RSS after the data was built,
before any model ran (the generator's temporaries are part of the peak).

    python bench/bench_closed_form.py [--repeats 3] [--batch-size 256] [--models ease item-knn ials]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

GOALS = {"ease": 1.5, "item-knn": 1.0, "ials": 1.0}
WHAT = {"ease": "fit + full evaluation", "item-knn": "fit + full evaluation",
        "user-knn": "fit + full evaluation", "ials": "one epoch"}


def make_data(n_users: int, n_items: int, mean_train: float, seed: int):
    """Train/test interactions of ML-1M's shape (vectorised per block of users)."""
    from recbench import Interactions

    rng = np.random.default_rng(seed)
    raw = rng.lognormal(0.0, 1.0, n_users)
    n_train = np.clip(np.round(raw * mean_train / raw.mean()), 20, int(0.6 * n_items)).astype(int)
    n_test = np.maximum(1, n_train // 8)
    logp = -1.0 * np.log(rng.permutation(n_items) + 10.0)
    parts = {"ut": [], "it": [], "us": [], "is": []}
    for start in range(0, n_users, 512):
        rows = np.arange(start, min(start + 512, n_users))
        order = np.argsort(-(logp[None, :] + rng.gumbel(size=(len(rows), n_items))), axis=1)
        col = np.arange(n_items)[None, :]
        a, b = n_train[rows][:, None], (n_train[rows] + n_test[rows])[:, None]
        tr, te = col < a, (col >= a) & (col < b)
        parts["ut"].append(np.broadcast_to(rows[:, None], order.shape)[tr])
        parts["it"].append(order[tr])
        parts["us"].append(np.broadcast_to(rows[:, None], order.shape)[te])
        parts["is"].append(order[te])
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    train = Interactions(cat["ut"], cat["it"], n_users, n_items)
    test = Interactions(cat["us"], cat["is"], n_users, n_items)
    return train, test


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- numpy references


def ref_topk(scores_fn, csr, n_users: int, k: int, block: int = 1024) -> float:
    """Seconds for scores (``scores_fn(rows)``), seen-item masking and an argpartition top-k."""
    t0 = time.perf_counter()
    for start in range(0, n_users, block):
        rows = np.arange(start, min(start + block, n_users))
        s = scores_fn(rows)
        lo, hi = csr.indptr[rows[0]], csr.indptr[rows[-1] + 1]
        r = np.repeat(np.arange(len(rows)), np.diff(csr.indptr[rows[0]:rows[-1] + 2]))
        s[r, csr.indices[lo:hi]] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        np.take_along_axis(part, np.argsort(-np.take_along_axis(s, part, 1), axis=1), 1)
    return time.perf_counter() - t0


def ref_ease(train, l2: float, k: int) -> float:
    import scipy.linalg as sl

    t0 = time.perf_counter()
    x = train.csr.toarray()
    g = x.T @ x
    g[np.diag_indices_from(g)] += l2
    c, low = sl.cho_factor(g, overwrite_a=True, check_finite=False)
    p = sl.cho_solve((c, low), np.eye(g.shape[0], dtype=np.float32), check_finite=False)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    fit = time.perf_counter() - t0
    return fit + ref_topk(lambda rows: x[rows] @ b, train.csr, train.n_users, k)


def ref_item_knn(train, knn: int, shrink: float, k: int) -> float:
    t0 = time.perf_counter()
    x = train.csr.toarray()
    g = x.T @ x
    norm = np.sqrt(np.diag(g))
    s = g / (norm[:, None] * norm[None, :] + shrink)
    np.fill_diagonal(s, -np.inf)
    nbr = np.argpartition(-s, knn - 1, axis=1)[:, :knn]  # per target row
    w = np.zeros_like(s)
    cols = np.repeat(np.arange(s.shape[0]), knn)
    w[nbr.ravel(), cols] = s[cols, nbr.ravel()]
    fit = time.perf_counter() - t0
    return fit + ref_topk(lambda rows: x[rows] @ w, train.csr, train.n_users, k)


# ---------------------------------------------------------------- one model (child process)


def run_one(name: str, args: argparse.Namespace) -> dict:
    import jax
    from recbench_builtin.metrics import METRICS
    from recbench_builtin.models.linear import (
        EASEConfig,
        EASEModel,
        IALSConfig,
        IALSModel,
    )
    from recbench_builtin.models.neighborhood import KNNConfig, KNNModel

    from recbench.evaluate import evaluate_ranking
    from recbench.specs import fit_info
    from recbench.timing import CompileClock

    train, test = make_data(args.users, args.items, args.train_per_user, args.seed)
    data_rss = rss_mb()
    metrics = [m for m in METRICS if m.name in ("ndcg", "recall")]
    key = jax.random.key(0)
    out: dict = {"model": name, "data_rss_mb": data_rss, "n_train": len(train),
                 "n_test": len(test)}

    if name == "ials":
        cfg = IALSConfig(factors=args.factors, epochs=args.repeats + 1)
        with CompileClock() as first:
            t0 = time.perf_counter()
            IALSModel(IALSConfig(factors=args.factors, epochs=1)).fit(train, key=key)
            first_s = time.perf_counter() - t0
        with CompileClock() as again:  # same shapes: nothing to compile
            c0, t0 = cpu_s(), time.perf_counter()
            fitted = IALSModel(cfg).fit(train, key=key)
            total = time.perf_counter() - t0
        out["cpu_s"] = (cpu_s() - c0) / cfg.epochs  # includes the host-side bucketing / epochs
        out.update(compile_s=first.seconds(), first_s=first_s,
                   steady_s=fit_info(fitted)["epoch_s"], steady_compiles=again.compiles,
                   fit_total_s=total, losses=list(fitted.losses))
    else:
        if name == "ease":
            model = EASEModel(EASEConfig(l2=args.l2))
        else:
            model = KNNModel(KNNConfig(k=args.knn, shrink=args.shrink), name == "user-knn",
                             "ranking")

        def once() -> dict:
            """Fit + evaluation: wall and CPU seconds, compile time and count, metrics."""
            c0 = cpu_s()
            with CompileClock() as clock:
                t0 = time.perf_counter()
                fitted = model.fit(train, key=key)
                jax.block_until_ready(fitted.__dict__)
                t1 = time.perf_counter()
                res = evaluate_ranking(fitted, train=train, test=test, metrics=metrics, ks=(10,),
                                       batch_size=args.batch_size)
                t2 = time.perf_counter()
            return {"fit_s": t1 - t0, "eval_s": t2 - t1, "total_s": t2 - t0,
                    "cpu_s": cpu_s() - c0, "compile_s": clock.seconds(),
                    "compiles": clock.compiles, "fit_info": fit_info(fitted),
                    "metrics": res.metrics}

        first = once()
        runs = [once() for _ in range(args.repeats)]

        def median(key: str) -> float:
            return statistics.median(r[key] for r in runs)

        out.update(first_s=first["total_s"], steady_s=median("total_s"),
                   best_s=min(r["total_s"] for r in runs), cpu_s=median("cpu_s"),
                   compile_s=first["compile_s"],
                   steady_compiles=max(r["compiles"] for r in runs),
                   fit_s=median("fit_s"), eval_s=median("eval_s"),
                   fit_info=runs[-1]["fit_info"], metrics=runs[-1]["metrics"])
        out["peak_rss_mb"] = peak_rss_mb()  # before the numpy reference runs in this process
        if not args.no_reference:
            if name == "ease":
                out["reference_s"] = min(ref_ease(train, args.l2, 10) for _ in range(2))
                out["reference"] = "numpy GEMM Gram + scipy Cholesky inverse + GEMM/argpartition"
            elif name == "item-knn":
                out["reference_s"] = min(ref_item_knn(train, args.knn, args.shrink, 10)
                                         for _ in range(2))
                out["reference"] = "numpy Gram + cosine + argpartition pruning + GEMM/argpartition"
    out.setdefault("peak_rss_mb", peak_rss_mb())
    return out


# ---------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--train-per-user", type=float, default=165.0)
    ap.add_argument("--models", nargs="+", default=["ease", "item-knn", "user-knn", "ials"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--l2", type=float, default=500.0)
    ap.add_argument("--knn", type=int, default=100)
    ap.add_argument("--shrink", type=float, default=10.0)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(run_one(args.child, args)))
        return

    import jax

    print(f"closed-form bench: {args.users} users x {args.items} items, ~{args.train_per_user:g} "
          f"train items per user, evaluation batch {args.batch_size}, K=10, repeats "
          f"{args.repeats}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, load average at start "
          f"{os.getloadavg()[0]:.2f}")
    rows = []
    for name in args.models:
        cmd = [sys.executable, __file__, "--child", name] + [
            a for a in sys.argv[1:] if a != "--models" and a not in args.models]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: FAILED\n{proc.stderr[-3000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        goal = GOALS.get(name)
        status = ("-" if goal is None else
                  f"goal <= {goal:.2f} s: {'MET' if r['steady_s'] <= goal else 'MISSED'} "
                  f"({r['steady_s'] / goal:.2f}x goal)")
        print(f"\n{name} ({WHAT[name]}), n_train={r['n_train']:,}")
        best = f"; best {r['best_s']:.3f} s" if "best_s" in r else ""
        print(f"  steady {r['steady_s']:.3f} s (median{best}; {r['steady_compiles']} "
              f"compilations)   first call {r['first_s']:.3f} s   compile {r['compile_s']:.3f} s"
              f"   {status}")
        print(f"  CPU time {r['cpu_s']:.3f} s per call (both cores busy: ~{r['cpu_s'] / 2:.3f} s "
              f"wall; a contention-free estimate)")
        if "fit_s" in r:
            extras = f"fit_info {r['fit_info']}; " if r["fit_info"] else ""
            print(f"  fit {r['fit_s']:.3f} s + evaluation {r['eval_s']:.3f} s; {extras}"
                  f"{ {k: round(v, 4) for k, v in r['metrics'].items()} }")
        if "losses" in r:
            print(f"  losses per epoch: {[round(v) for v in r['losses']]}")
        if "reference_s" in r:
            print(f"  reference ({r['reference']}): {r['reference_s']:.3f} s -> recbench / "
                  f"reference = {r['steady_s'] / r['reference_s']:.2f}")
        print(f"  peak RSS {r['peak_rss_mb']:.0f} MB (data alone {r['data_rss_mb']:.0f} MB)")
    print(f"\nload average at end {os.getloadavg()[0]:.2f} (2-core machine shared with other "
          "processes: steady times are medians, compare ratios within one run)")


if __name__ == "__main__":
    main()
