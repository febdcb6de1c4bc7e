"""Full-ranking and point-prediction evaluation.

Ranking: users are scored in fixed-size batches (the last one padded, so every call has one shape and
compiles once); items the user has already seen are masked on the device from padded index lists
(scatter, never a dense users x items mask); ``lax.top_k`` picks the best ``k_max`` items, ties going
to the lower item index. Metrics are computed once, on the host, from the concatenated per-user
top-k hits, so results do not depend on the batch size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .data import Interactions, UserBatch
from .errors import ModelError
from .specs import MetricSpec, PointContext, RankingContext


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]  # metric label -> values aligned with ``users``
    users: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def padded_lists(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray, pad: int,
                 width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a CSR structure as a padded ``[len(rows), width]`` int32 array plus lengths."""
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int32)
    width = max(1, int(lengths.max(initial=0))) if width is None else width
    out = np.full((len(rows), width), pad, np.int32)
    col = np.arange(width)
    take = col[None, :] < np.minimum(lengths, width)[:, None]
    src = indptr[rows][:, None] + col[None, :]
    out[take] = values[src[take]]
    return out, lengths


def _csr_lists(x: Interactions) -> tuple[np.ndarray, np.ndarray]:
    m = x.csr
    return m.indptr.astype(np.int64), m.indices.astype(np.int32)


@partial(jax.jit, static_argnames=("k_max", "with_ranks"))
def rank_batch(scores: jax.Array, seen: jax.Array, relevant: jax.Array, *, k_max: int,
               with_ranks: bool) -> dict[str, jax.Array]:
    """Mask ``seen`` items, take the top ``k_max``, and mark which are ``relevant``.

    ``seen`` and ``relevant`` are padded with an out-of-range id (dropped by the scatter).
    """
    b, n = scores.shape
    rows = jnp.arange(b)[:, None]
    scores = scores.astype(jnp.float32)
    seen_mask = jnp.zeros((b, n), bool).at[rows, seen].set(True, mode="drop")
    rel_mask = jnp.zeros((b, n), bool).at[rows, relevant].set(True, mode="drop")
    masked = jnp.where(seen_mask, -jnp.inf, scores)
    _, top = jax.lax.top_k(masked, k_max)  # equal scores: lower index first
    hits = jnp.take_along_axis(rel_mask & ~seen_mask, top, axis=1)
    out = {"topk": top, "hits": hits, "nan": jnp.isnan(scores).any(axis=1),
           "n_candidates": n - seen_mask.sum(axis=1)}
    if with_ranks:
        order = jnp.argsort(-masked, axis=1, stable=True)
        position = jnp.zeros_like(order).at[rows, order].set(jnp.arange(n)[None, :])
        ranks = jnp.take_along_axis(position, jnp.minimum(relevant, n - 1), axis=1)
        out["ranks"] = jnp.where(relevant < n, ranks, -1)
    return out


def _user_batches(users: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, int]]:
    """Fixed-size index chunks into ``users``; the last is padded by repeating row 0."""
    out = []
    for start in range(0, len(users), batch_size):
        idx = np.arange(start, min(start + batch_size, len(users)))
        n_real = len(idx)
        if n_real < batch_size:
            idx = np.concatenate([idx, np.zeros(batch_size - n_real, idx.dtype)])
        out.append((idx, n_real))
    return out


def evaluate_ranking(fitted: Any, *, train: Interactions, test: Interactions,
                     known: Interactions | None = None, metrics: list[MetricSpec],
                     ks: tuple[int, ...], batch_size: int = 256) -> EvalResult:
    """Full-ranking evaluation of ``fitted`` on ``test``.

    ``known`` (default ``train``) holds the items masked per user; ``train`` gives the history the
    model sees. Users without test items are excluded and counted in ``counts``.
    """
    known = train if known is None else known
    n_items = train.n_items
    test_ptr, test_items = _csr_lists(test)
    users = np.flatnonzero(np.diff(test_ptr) > 0).astype(np.int32)
    if len(users) == 0:
        raise ModelError("evaluation: no user has a test item; check the split")
    batch_size = min(batch_size, len(users))
    k_max = min(max(ks), n_items)
    with_ranks = any(m.needs_ranks for m in metrics)
    known_ptr, known_items = _csr_lists(known)
    seen, _ = padded_lists(known_ptr, known_items, users, pad=n_items)
    relevant, n_relevant = padded_lists(test_ptr, test_items, users, pad=n_items)
    hist_ptr, hist_items = train.sequences()
    history, hist_len = padded_lists(hist_ptr, hist_items, users, pad=n_items)

    def run(idx: np.ndarray, n_real: int) -> tuple[dict[str, np.ndarray], float, float]:
        valid = np.arange(len(idx)) < n_real
        batch = UserBatch(jnp.asarray(users[idx]), jnp.asarray(history[idx]),
                          jnp.asarray(hist_len[idx]), jnp.asarray(valid), n_items)
        t0 = time.perf_counter()
        scores = jax.block_until_ready(fitted.score(batch))
        t1 = time.perf_counter()
        if scores.shape != (len(idx), n_items):
            raise ModelError(f"score() returned shape {tuple(scores.shape)}, expected "
                             f"({len(idx)}, {n_items}) = (batch size, n_items)")
        if not jnp.issubdtype(scores.dtype, jnp.floating):
            raise ModelError(f"score() returned dtype {scores.dtype}, expected a float dtype")
        out = jax.block_until_ready(rank_batch(scores, jnp.asarray(seen[idx]),
                                               jnp.asarray(relevant[idx]), k_max=k_max,
                                               with_ranks=with_ranks))
        t2 = time.perf_counter()
        out = {k: np.asarray(v)[:n_real] for k, v in out.items()}
        if out["nan"].any():
            bad = int(users[idx[:n_real][out["nan"]][0]])
            raise ModelError(f"score() returned NaN for user {bad}")
        return out, t1 - t0, t2 - t1

    batches = _user_batches(np.arange(len(users)), batch_size)
    t_start = time.perf_counter()
    _, first_score, first_rank = run(*batches[0])  # compile + run
    parts, t_score, t_rank = [], 0.0, 0.0
    for idx, n_real in batches:
        out, ts, tr = run(idx, n_real)
        parts.append(out)
        t_score += ts
        t_rank += tr
    steady = len(batches) and (t_score + t_rank) / len(batches)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ctx = RankingContext(users=users, topk=joined["topk"], hits=joined["hits"],
                         n_relevant=n_relevant, n_candidates=joined["n_candidates"],
                         n_items=n_items, relevant_ranks=joined.get("ranks"))
    t_metric = time.perf_counter()
    values, per_user = _compute(metrics, ctx, ks)
    timings = {
        "score_s": t_score,
        "rank_s": t_rank,
        "metrics_s": time.perf_counter() - t_metric,
        "eval_compile_s": max(0.0, first_score + first_rank - steady),
        "eval_total_s": time.perf_counter() - t_start,
    }
    counts = {"users_evaluated": len(users),
              "users_excluded": int((known.user_counts > 0).sum() - len(users)),
              "batch_size": batch_size, "batches": len(batches)}
    return EvalResult(values, per_user, users, timings, counts)


def metric_label(spec: MetricSpec, k: int | None) -> str:
    return f"{spec.name}@{k}" if k is not None else spec.name


def _compute(metrics: list[MetricSpec], ctx: Any, ks: tuple[int, ...]
             ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    values, per_user = {}, {}
    for spec in metrics:
        for k in (ks if spec.uses_k else (None,)):
            label = metric_label(spec, k)
            result = spec.compute(ctx, k)
            if spec.per_user:
                arr = np.asarray(result, np.float64)
                per_user[label] = arr
                values[label] = float(arr.mean())
            else:
                values[label] = float(result)
            if not np.isfinite(values[label]):
                raise ModelError(f"metric {label} is {values[label]} (metric plugin or model output)")
    return values, per_user


def evaluate_points(fitted: Any, *, users: np.ndarray, items: np.ndarray, target: np.ndarray,
                    metrics: list[MetricSpec], chunk: int = 8192) -> EvalResult:
    """Rating or binary evaluation of ``fitted.predict`` on (user, item) pairs, in fixed-size chunks."""
    if not hasattr(fitted, "predict"):
        raise ModelError("this model has no predict(users, items); it cannot serve rating/binary tasks")
    n = len(users)
    if n == 0:
        raise ModelError("evaluation: the test set is empty")
    chunk = min(chunk, n)
    preds = []
    t0 = time.perf_counter()
    for idx, n_real in _user_batches(np.arange(n), chunk):
        p = np.asarray(jax.block_until_ready(fitted.predict(jnp.asarray(users[idx]),
                                                            jnp.asarray(items[idx]))))
        if p.shape != (len(idx),):
            raise ModelError(f"predict() returned shape {p.shape}, expected ({len(idx)},)")
        preds.append(p[:n_real])
    pred = np.concatenate(preds).astype(np.float64)
    if not np.isfinite(pred).all():
        raise ModelError(f"predict() returned NaN/inf for pair {int(np.flatnonzero(~np.isfinite(pred))[0])}")
    t1 = time.perf_counter()
    ctx = PointContext(users, items, np.asarray(target, np.float64), pred)
    values, per_user = _compute(metrics, ctx, (None,))
    return EvalResult(values, per_user, np.unique(users),
                      {"score_s": t1 - t0, "eval_total_s": time.perf_counter() - t0},
                      {"pairs": n})


def binary_pairs(test: Interactions, known: Interactions, threshold: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled pairs for binary interaction prediction.

    With ratings: label = rating >= ``threshold``. Without: test pairs are positives and each gets
    one negative item drawn uniformly among items the user has not interacted with (labelled
    sampled-negative protocol; recorded on the protocol card).
    """
    if test.rating is not None:
        return test.user, test.item, (test.rating >= threshold).astype(np.float64)
    occupied = known.csr + test.csr
    neg = rng.integers(0, test.n_items, len(test))
    for _ in range(100):  # resample collisions; vectorised over all pairs
        clash = np.asarray(occupied[test.user, neg]).ravel() > 0
        if not clash.any():
            break
        neg[clash] = rng.integers(0, test.n_items, int(clash.sum()))
    users = np.concatenate([test.user, test.user])
    items = np.concatenate([test.item, neg])
    label = np.concatenate([np.ones(len(test)), np.zeros(len(test))])
    return users, items, label
