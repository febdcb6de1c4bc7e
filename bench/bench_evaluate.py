"""Full-ranking evaluation speed: recbench's ``evaluate_ranking`` against the plain floor, one run.

At ML-1M size (6,040 users x 3,706 items, 64-d embeddings, ~1M training interactions to mask) it
times, per user batch size:

- floor numpy: ``U[b] @ I.T``, seen items set to -inf, ``np.argpartition`` top-k + sort of the k;
- floor jax: one jitted function per batch (gather + matmul, flat scatter mask, ``lax.top_k``);
- recbench: ``evaluate_ranking`` end to end (host preparation, scoring, masking, top-k, metrics)
  with a small model whose ``score`` is a jitted ``u_emb[users] @ i_emb.T``.

Compilation (first call at a batch size) is reported apart from the steady state (median and
minimum of ``--repeats`` rounds; the three are timed in turn, so load from other processes hits
them alike). Goal (BENCHMARKS.md): recbench <= 0.2 s and within 2x of the floor.

    python bench/bench_evaluate.py [--users 6040 --items 3706 --dim 64 --k 10 \
                                    --batch-sizes 128 256 512 1024 --repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from recbench import Interactions, MetricSpec, UserBatch
from recbench.evaluate import evaluate_ranking

# ---------------------------------------------------------------- synthetic data


def make_data(n_users: int, n_items: int, dim: int, mean_train: float, seed: int):
    """Embeddings plus popularity-skewed train/test sets (no overlap), ML-1M-like user activity."""
    rng = np.random.default_rng(seed)
    u_emb = (rng.standard_normal((n_users, dim)) / np.sqrt(dim)).astype(np.float32)
    i_emb = (rng.standard_normal((n_items, dim)) / np.sqrt(dim)).astype(np.float32)
    # Log-normal activity (ML-1M: min 20, median ~96, mean 165, max 2,314), scaled to the mean.
    raw = rng.lognormal(0.0, 1.0, n_users)
    n_train = np.clip(np.round(raw * mean_train / raw.mean()), 20, int(0.6 * n_items)).astype(int)
    n_test = np.maximum(1, n_train // 8)  # 8:1 train:test, as an 8:1:1 split
    # Zipf-like item popularity; each user's items are a weighted sample without replacement
    # (Gumbel top-k), the first n_train of them train, the next n_test test.
    logp = -1.0 * np.log(rng.permutation(n_items) + 10.0)
    users_tr, items_tr, users_te, items_te = [], [], [], []
    for start in range(0, n_users, 512):
        rows = np.arange(start, min(start + 512, n_users))
        keys = logp[None, :] + rng.gumbel(size=(len(rows), n_items))
        order = np.argsort(-keys, axis=1)
        for r, u in enumerate(rows):
            a, b = n_train[u], n_train[u] + n_test[u]
            users_tr.append(np.full(a, u))
            items_tr.append(order[r, :a])
            users_te.append(np.full(b - a, u))
            items_te.append(order[r, a:b])
    train = Interactions(np.concatenate(users_tr), np.concatenate(items_tr), n_users, n_items)
    test = Interactions(np.concatenate(users_te), np.concatenate(items_te), n_users, n_items)
    return u_emb, i_emb, train, test


# ---------------------------------------------------------------- the model


@jax.jit
def _mf_score(u_emb: jax.Array, i_emb: jax.Array, users: jax.Array) -> jax.Array:
    return u_emb[users] @ i_emb.T


@dataclass
class MF:
    u_emb: jax.Array
    i_emb: jax.Array

    def score(self, batch: UserBatch) -> jax.Array:
        return _mf_score(self.u_emb, self.i_emb, batch.users)


def _metrics() -> tuple[list[MetricSpec], str]:
    try:
        from recbench_builtin.metrics import METRICS
    except ImportError:
        METRICS = None
    if METRICS is not None:
        wanted = ("precision", "recall", "ndcg", "hit", "mrr", "map")
        return [m for m in METRICS if m.name in wanted], "built-in " + ",".join(wanted)
    spec = MetricSpec("precision", "ranking", True,
                      lambda ctx, k: np.asarray(ctx.hits[:, :k], np.float64).sum(1) / k)
    return [spec], "inline precision"


# ---------------------------------------------------------------- floors


def _batches(n: int, bs: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + bs, n)) for s in range(0, n, bs)]


def floor_numpy(u: np.ndarray, i: np.ndarray, csr, k: int, bs: int) -> np.ndarray:
    out = []
    for rows in _batches(len(u), bs):
        s = u[rows] @ i.T
        lo, hi = csr.indptr[rows[0]], csr.indptr[rows[-1] + 1]
        r = np.repeat(np.arange(len(rows)), np.diff(csr.indptr[rows[0]:rows[-1] + 2]))
        s[r, csr.indices[lo:hi]] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(s, part, 1)
        out.append(np.take_along_axis(part, np.argsort(-best, axis=1), 1))
    return np.concatenate(out)


@jax.jit(static_argnames=("k",))
def _jax_floor_batch(u_emb, i_emb, users, seen_flat, *, k):
    s = u_emb[users] @ i_emb.T
    b, n = s.shape
    s = s.reshape(-1).at[seen_flat].set(-jnp.inf, mode="drop").reshape(b, n)
    return jax.lax.top_k(s, k)[1]


def floor_jax_inputs(csr, n_users: int, bs: int):
    """Per batch: user ids and flat (row * n_items + item) seen ids, padded to one length."""
    n = csr.shape[1]
    parts = []
    for rows in _batches(n_users, bs):
        lo, hi = csr.indptr[rows[0]], csr.indptr[rows[-1] + 1]
        r = np.repeat(np.arange(len(rows)), np.diff(csr.indptr[rows[0]:rows[-1] + 2]))
        users = np.zeros(bs, np.int32)
        users[:len(rows)] = rows
        parts.append((users, (r * n + csr.indices[lo:hi]).astype(np.int32), len(rows)))
    width = max(len(f) for _, f, _ in parts)
    return [(jnp.asarray(u), jnp.asarray(np.pad(f, (0, width - len(f)), constant_values=bs * n)),
             m) for u, f, m in parts]


def floor_jax(u_emb, i_emb, inputs, k: int) -> np.ndarray:
    outs = [(_jax_floor_batch(u_emb, i_emb, users, flat, k=k), m) for users, flat, m in inputs]
    return np.concatenate([np.asarray(o)[:m] for o, m in outs])


def check_same(name: str, top: np.ndarray, ref: np.ndarray, u: np.ndarray, i: np.ndarray
               ) -> None:
    """``top`` equals ``ref`` up to near-ties: float32 products differ in the last bits between
    BLAS/XLA kernels and block shapes, which may swap two items whose scores differ by ~1e-7."""
    bad = np.flatnonzero((top != ref).any(axis=1))
    u64, i64 = u[bad].astype(np.float64), i.astype(np.float64)
    got = np.einsum("bd,bkd->bk", u64, i64[top[bad]])
    want = np.einsum("bd,bkd->bk", u64, i64[ref[bad]])
    if not np.allclose(got, want, rtol=0, atol=1e-5):
        raise AssertionError(f"{name}: top-k differs from the reference beyond rounding")


# ---------------------------------------------------------------- timing


def wall(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(*, users: int = 6040, items: int = 3706, dim: int = 64, k: int = 10,
            train_per_user: float = 165.0, batch_sizes: tuple[int, ...] = (256, 512),
            repeats: int = 5, seed: int = 0, log=print) -> dict:
    """The whole comparison (printed through ``log``); returns the best batch size's numbers:
    ``recbench_s`` / ``floor_s`` (medians, steady state), their minima, ``ratio``, compile."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    u_np, i_np, train, test = make_data(users, items, dim, train_per_user, seed)
    csr = train.csr
    log(f"data: {users} users x {items} items, dim {dim}, {len(train):,} train / "
        f"{len(test):,} test interactions, max {train.user_counts.max()} train items per user "
        f"({time.perf_counter() - t0:.1f} s to build)")
    metrics, metric_names = _metrics()
    log(f"metrics: {metric_names} @ k={k}")
    log(f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!s}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    u_j, i_j = jnp.asarray(u_np), jnp.asarray(i_np)
    model = MF(u_j, i_j)

    ref = floor_numpy(u_np, i_np, csr, k, users)
    np_whole = statistics.median(wall(lambda: floor_numpy(u_np, i_np, csr, k, users))[0]
                                 for _ in range(repeats))
    log(f"floor numpy, all users in one block: {np_whole:.3f} s (median of {repeats})")

    log(f"""
Seconds. The three are timed in turn, {repeats} rounds after a first call each: med = median,
min = least disturbed by other processes. ratio = recbench / the faster floor at that batch size.
first = recbench's first call (wall), compile = its eval_compile_s (JAX tracing + compilation);
score / rank / metric = recbench's own steady timings (medians).""")
    log(f"{'batch':>6} | {'numpy':>6} {'jax':>6} {'recb':>6} {'ratio':>5} | {'jax':>6} "
        f"{'recb':>6} {'ratio':>5} | {'first':>5} {'compile':>7} | {'score':>6} {'rank':>6} "
        f"{'metric':>6}")
    log(f"{'':>6} | {'median':^27} | {'min':^20} |")
    rows = []
    for bs in batch_sizes:
        bs = min(bs, users)
        inputs = floor_jax_inputs(csr, users, bs)
        got: dict = {}
        capture = MetricSpec("capture", "ranking", True, per_user=False,
                             compute=lambda ctx, _k: got.update(top=ctx.topk, u=ctx.users) or 0.0)
        runs = {
            "numpy": lambda: floor_numpy(u_np, i_np, csr, k, bs),
            "jax": lambda: floor_jax(u_j, i_j, inputs, k),
            "recbench": lambda: evaluate_ranking(model, train=train, test=test,
                                                 metrics=metrics + [capture], ks=(k,),
                                                 batch_size=bs),
        }
        first = {name: wall(fn) for name, fn in runs.items()}
        times: dict[str, list[float]] = {name: [] for name in runs}
        results = []
        for _ in range(repeats):
            for name, fn in runs.items():
                t, out = wall(fn)
                times[name].append(t)
                if name == "recbench":
                    results.append(out)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        low = {name: min(ts) for name, ts in times.items()}
        part = {key: statistics.median(r.timings[key] for r in results)
                for key in ("score_s", "rank_s", "metrics_s")}
        compile_s = first["recbench"][1].timings["eval_compile_s"]
        ratio = med["recbench"] / min(med["numpy"], med["jax"])
        ratio_min = low["recbench"] / min(low["numpy"], low["jax"])
        log(f"{bs:>6} | {med['numpy']:>6.3f} {med['jax']:>6.3f} {med['recbench']:>6.3f} "
            f"{ratio:>5.2f} | {low['jax']:>6.3f} {low['recbench']:>6.3f} {ratio_min:>5.2f} | "
            f"{first['recbench'][0]:>5.2f} {compile_s:>7.2f} | {part['score_s']:>6.3f} "
            f"{part['rank_s']:>6.3f} {part['metrics_s']:>6.3f}")
        for name, top, who in (("floor numpy", first["numpy"][1], slice(None)),
                               ("floor jax", first["jax"][1], slice(None)),
                               ("recbench", np.asarray(got["top"])[:, :k], got["u"])):
            check_same(name, top, ref[who], u_np[who], i_np)
        rows.append((bs, med, low, compile_s, part))
    bs, med, low, compile_s, part = min(rows, key=lambda r: r[1]["recbench"])
    floor = min(min(r[1]["numpy"], r[1]["jax"]) for r in rows)
    floor_min = min(min(r[2]["numpy"], r[2]["jax"]) for r in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"\nbest recbench: batch {bs}: {med['recbench']:.3f} s median "
        f"({low['recbench']:.3f} min) steady, {compile_s:.2f} s compile; best floor "
        f"{floor:.3f} s median ({floor_min:.3f} min); ratio {med['recbench'] / floor:.2f} "
        f"median, {low['recbench'] / floor_min:.2f} min (goal: <= 0.2 s and <= 2x)")
    log(f"top-k of all three identical up to float rounding near-ties; peak RSS {peak:.0f} MiB; "
        f"load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    return {"users": users, "items": items, "batch_size": bs, "recbench_s": med["recbench"],
            "recbench_min_s": low["recbench"], "floor_s": floor, "floor_min_s": floor_min,
            "ratio": med["recbench"] / floor, "ratio_min": low["recbench"] / floor_min,
            "compile_s": compile_s, **part, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--train-per-user", type=float, default=165.0)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    measure(users=args.users, items=args.items, dim=args.dim, k=args.k,
            train_per_user=args.train_per_user, batch_sizes=tuple(args.batch_sizes),
            repeats=args.repeats, seed=args.seed)


if __name__ == "__main__":
    main()
