"""Full-ranking and point-prediction evaluation.

Ranking: users are scored in fixed-size batches (the last one padded, so every call has one shape
and compiles once); items the user has already seen are masked on the device by a scatter of flat
(row, item) ids built per batch from the CSR history (never a dense users x items mask); the best
``k_max`` items are selected exactly, ties going to the lower item index. Metrics are computed
once, on the host, from the concatenated per-user top-k hits, so results do not depend on the
batch size.

Speed choices were measured at ML-1M size on the 2-core development CPU
(``bench/bench_evaluate.py``); each is noted where it is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from . import sharding
from .data import Interactions, UserBatch
from .errors import DataError, ModelError
from .sharding import AXIS
from .timing import CompileClock
from .specs import FittedModel, MetricSpec, PointContext, RankingContext, RatingModel


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]  # metric label -> values aligned with ``users``
    users: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _row_entries(indptr: np.ndarray, rows: np.ndarray, width: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For CSR ``rows``, each cut to ``width`` values: for every value kept, its flat index in a
    ``[len(rows), width]`` block and its source index (two repeats, no 2-D fancy indexing)."""
    take = np.minimum(indptr[rows + 1] - indptr[rows], width)
    starts = np.cumsum(take) - take
    at = np.arange(int(take.sum()))
    dst = at + np.repeat(np.arange(len(rows)) * width - starts, take)
    return dst, at + np.repeat(indptr[rows] - starts, take)


def padded_lists(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray, pad: int,
                 width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a CSR structure as a padded ``[len(rows), width]`` int32 array plus lengths."""
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int32)
    width = max(1, int(lengths.max(initial=0))) if width is None else width
    out = np.full((len(rows), width), pad, np.int32)
    # Work proportional to the values, not to rows x width: with a boolean take over the padded
    # block, the three lists of an ML-1M evaluation took 70 ms.
    dst, src = _row_entries(indptr, rows, width)
    out.reshape(-1)[dst] = values[src]
    return out, lengths


def _csr_lists(x: Interactions) -> tuple[np.ndarray, np.ndarray]:
    m = x.csr
    return m.indptr.astype(np.int64), m.indices.astype(np.int32)


def _bucket(width: int) -> int:
    """``width`` rounded up to 4 steps per power of two (<= 25% padding), and to at least 16, so
    that splits of one dataset (seeds, folds) mostly share shapes and hence compiled code."""
    step = 1 << max(0, int(width).bit_length() - 3)
    return max(16, -(-int(width) // step) * step)


# Two-stage top-k block size, and the least number of items per row, per k, for which it is used
# (see _top_k). Measured on the 2-core CPU (minimum of 25 runs), top-10 of 2,048 x 3,706 scores:
# lax.top_k 12.4 ms, two-stage 11.0 ms; of 512 x 20,000: 12.3 -> 4.4 ms; a whole ML-1M evaluation
# 76 -> 63 ms. Below ~8 blocks per k it loses (3,706 items, k=50: 33 -> 40 ms), hence the
# threshold. Blocks of 16 or 64 were no better overall.
_TOPK_BLOCK = 32
_TOPK_MIN_ITEMS_PER_K = 8 * _TOPK_BLOCK


def _top_k(x: jax.Array, k: int) -> jax.Array:
    """Indices of the ``k`` largest entries per row, ties to the lower index (as ``lax.top_k``).

    XLA's CPU top-k is a scalar partial sort per row. For long rows, a two-stage selection is
    exact and cheaper: take the maximum of each block of ``_TOPK_BLOCK`` items (vectorised), keep
    the ``k`` best blocks by (max, block index), and select among their ``k * _TOPK_BLOCK`` items.
    Exact: an item of the true top k outside the kept blocks would be beaten by each kept block's
    maximum (larger, or equal with a lower index), i.e. by k items. Needs no NaN in ``x`` and no
    -0.0 (the caller canonicalises zeros; NaN rows are rejected anyway).
    """
    b, n = x.shape
    s = _TOPK_BLOCK
    if n < _TOPK_MIN_ITEMS_PER_K * k:
        return jax.lax.top_k(x, k)[1]
    n_blocks = -(-n // s)
    # Padding takes the highest indices, so it loses every tie with a real item.
    blocks = jnp.pad(x, ((0, 0), (0, n_blocks * s - n)), constant_values=-jnp.inf)
    blocks = blocks.reshape(b, n_blocks, s)
    _, best = jax.lax.top_k(blocks.max(axis=2), k)
    best = jnp.sort(best, axis=1)  # candidates in item order, so ties still go to the lower index
    candidates = jnp.take_along_axis(blocks, best[:, :, None], axis=1).reshape(b, k * s)
    _, pos = jax.lax.top_k(candidates, k)
    return jnp.take_along_axis(best, pos // s, axis=1) * s + pos % s


def _in_sorted(sorted_ids: jax.Array, ids: jax.Array) -> jax.Array:
    """Whether each of ``ids`` occurs in the ascending ``sorted_ids`` (bisection)."""
    pos = jnp.searchsorted(sorted_ids, ids)
    return sorted_ids[jnp.minimum(pos, sorted_ids.shape[0] - 1)] == ids


def _mask_and_rank(scores: jax.Array, seen: jax.Array, relevant: jax.Array, k_max: int,
                   with_ranks: bool) -> dict[str, jax.Array]:
    b, n = scores.shape
    scores = scores.astype(jnp.float32)
    # -0.0 -> +0.0: XLA's top-k orders -0.0 below +0.0; equal scores must tie (lower index first).
    # Seen items are set to -inf by a scatter into that copy in place: no [B, n_items] mask.
    masked = jnp.where(scores == 0, 0.0, scores).reshape(-1)
    masked = masked.at[seen].set(-jnp.inf, mode="drop").reshape(b, n)
    top = _top_k(masked, k_max)
    rows = jnp.arange(b, dtype=jnp.int32)[:, None]
    # ``seen`` is ascending (flat ids of CSR rows), so "was it seen" is a bisection per winner.
    top_seen = _in_sorted(seen, rows * n + top)
    # Hits by comparing the k_max winners with the padded test items: no [B, n_items] scatter.
    is_relevant = (top[:, :, None] == relevant[:, None, :]).any(axis=2)
    out = {"topk": top, "hits": is_relevant & ~top_seen, "nan": jnp.isnan(scores).any(axis=1)}
    if with_ranks:
        order = jnp.argsort(-masked, axis=1, stable=True)
        position = jnp.zeros_like(order).at[rows, order].set(jnp.arange(n)[None, :])
        clipped = jnp.minimum(relevant, n - 1)
        ranks = jnp.take_along_axis(position, clipped, axis=1)
        # Padding and relevant items masked as seen take no part in AUC.
        candidate = (relevant < n) & ~_in_sorted(seen, rows * n + clipped)
        out["ranks"] = jnp.where(candidate, ranks, -1)
    return out


def flat_seen(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, *, n_rows: int,
              n_items: int, width: int) -> np.ndarray:
    """The items of CSR ``rows`` (``indptr``, ``items``) as flat ``row * n_items + item`` ids for
    :func:`rank_batch`: int32 ``[width]``, padded with ``n_rows * n_items`` (out of range, so the
    scatter drops it). ``n_rows`` is the batch's row count; rows past ``len(rows)`` (padding) have
    nothing masked."""
    if n_rows * n_items >= 2**31:
        raise ModelError(f"ranking: a batch of {n_rows} users x {n_items} items has more cells "
                         f"than int32 ids can address; lower the evaluation batch size")
    # A row of n_items entries: flat block index == row * n_items + position in the row.
    dst, src = _row_entries(indptr, rows, n_items)
    if len(dst) > width:
        raise ModelError(f"ranking: {len(dst)} seen items in a batch, more than the width "
                         f"{width} reserved for them (a bug in the caller's width)")
    out = np.full(width, n_rows * n_items, np.int32)
    out[:len(dst)] = dst - (dst % n_items) + items[src]
    return out


@partial(jax.jit, static_argnames=("k_max", "with_ranks"))
def rank_batch(scores: jax.Array, seen: jax.Array, relevant: jax.Array, *, k_max: int,
               with_ranks: bool) -> dict[str, jax.Array]:
    """Mask the ``seen`` items, take the top ``k_max``, and mark which are ``relevant``.

    ``seen`` holds flat ``row * n_items + item`` ids in ascending order (:func:`flat_seen` of
    CSR rows, whose items are sorted), ``relevant`` is a ``[B, R]`` list padded with ``n_items``.
    Equal scores rank the lower item index first. Flat ids make the mask's scatter touch only
    real entries: padded ``[B, L]`` lists (L = the longest history, ~14x the mean) cost 35-50 ms
    per ML-1M evaluation, flat ones 6-12 ms.
    """
    return _mask_and_rank(scores, seen, relevant, k_max, with_ranks)


@partial(jax.jit, static_argnames=("k_max", "with_ranks", "mesh"))
def rank_sharded(scores: jax.Array, seen: jax.Array, relevant: jax.Array, *, k_max: int,
                 with_ranks: bool, mesh: Mesh) -> dict[str, jax.Array]:
    """:func:`rank_batch` with the rows split over ``mesh``'s devices, each ranking its own rows
    (no communication). ``seen`` is one :func:`flat_seen` list per device, concatenated, with
    row ids local to that device's rows (:func:`sharded_seen`)."""
    spec = PartitionSpec(AXIS)
    local = partial(_mask_and_rank, k_max=k_max, with_ranks=with_ranks)
    return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec)(
        scores, seen, relevant)


def rank_placed(scores: jax.Array, seen: jax.Array, relevant: jax.Array, *, k_max: int,
                with_ranks: bool, mesh: Mesh | None) -> dict[str, jax.Array]:
    """:func:`rank_sharded` over ``mesh``, or :func:`rank_batch` on one device (``None``)."""
    if mesh is None:
        return rank_batch(scores, seen, relevant, k_max=k_max, with_ranks=with_ranks)
    return rank_sharded(scores, seen, relevant, k_max=k_max, with_ranks=with_ranks, mesh=mesh)


def sharded_seen(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, n_real: int, *,
                 n_shards: int, n_items: int, width: int) -> np.ndarray:
    """:func:`flat_seen` for a batch of ``len(rows)`` rows split into ``n_shards`` equal parts:
    int32 ``[n_shards * width]``, part ``s`` the seen items of its rows with row ids counted from
    the part's first row (only the first ``n_real`` rows of the batch are masked)."""
    per = len(rows) // n_shards
    return np.concatenate([
        flat_seen(indptr, items, rows[s * per:min((s + 1) * per, n_real)], n_rows=per,
                  n_items=n_items, width=width) for s in range(n_shards)])


def _shard_counts(counts: np.ndarray, n_real: int, n_shards: int) -> np.ndarray:
    """The sum of ``counts`` (one per row of a batch) over each part's real rows."""
    per = len(counts) // n_shards
    real = np.where(np.arange(len(counts)) < n_real, counts, 0)
    return real.reshape(n_shards, per).sum(axis=1)


def cold_candidates(train: Interactions, part: Interactions) -> np.ndarray:
    """``protocol.candidates = "cold"`` as an item mask (bool ``[n_items]``): the items of ``part``
    (the test part, or the validation part during a fit) without an interaction in ``train``."""
    cold = np.zeros(train.n_items, bool)
    cold[part.item] = True
    return cold & (train.item_counts == 0)


def candidate_counts(known: Interactions, users: np.ndarray, candidates: np.ndarray | None
                     ) -> np.ndarray:
    """Per user of ``users``, how many items are ranked: the candidates (every item without a
    mask) that are not among the user's ``known`` items. int32."""
    rows = known.csr[users]
    if candidates is None:
        return (known.n_items - np.diff(rows.indptr)).astype(np.int32)
    known_allowed = np.asarray(rows @ candidates.astype(np.float32)).ravel()
    return (int(candidates.sum()) - known_allowed).astype(np.int32)


@jax.jit
def _restrict(scores: jax.Array, allowed: jax.Array) -> jax.Array:
    """Items outside the candidate set rank last (NaN kept, so a NaN model still fails)."""
    return jnp.where(allowed[None, :] | jnp.isnan(scores), scores, -jnp.inf)


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


def evaluate_ranking(fitted: FittedModel, *, train: Interactions, test: Interactions,
                     known: Interactions | None = None, metrics: list[MetricSpec],
                     ks: tuple[int, ...], batch_size: int = 256,
                     fit_on: Interactions | None = None,
                     candidates: np.ndarray | None = None) -> EvalResult:
    """Full-ranking evaluation of ``fitted`` on ``test``.

    ``candidates`` (bool ``[n_items]``, default every item) restricts what is ranked: the other
    items score ``-inf`` before masking and top-k, and test items outside it are dropped (a
    cold-start evaluation ranks the cold items among themselves; protocol.candidates).

    ``known`` (default ``train``) holds the items masked per user; ``train`` gives the history the
    model sees; ``fit_on`` (default ``train``) is the part the model was trained on, whose item
    counts metrics see as ``RankingContext.item_popularity``. Users without test items are
    excluded and counted in ``counts``.

    Timings: ``eval_compile_s`` is the time JAX spent tracing and compiling (model and ranking)
    during the call; ``score_s`` and ``rank_s`` exclude it.
    """
    t_start = time.perf_counter()
    known = train if known is None else known
    n_items = train.n_items
    allowed = None
    if candidates is not None:
        candidates = np.asarray(candidates, bool)
        if candidates.shape != (n_items,) or not candidates.any():
            raise DataError(f"evaluation: candidates must be a non-empty bool mask of shape "
                            f"({n_items},), got shape {candidates.shape} with "
                            f"{int(candidates.sum())} items")
        test = test.subset(candidates[test.item])
        allowed = jnp.asarray(candidates)
    test_ptr, test_items = _csr_lists(test)
    users = np.flatnonzero(np.diff(test_ptr) > 0).astype(np.int32)
    if len(users) == 0:
        raise ModelError("evaluation: no user has a test item; check the split")
    # Fewer users than a batch: one padded batch of a bucketed size, so splits with a few more or
    # fewer test users (seeds, folds) share one compiled model and ranking program.
    # Sharded over the devices: a batch splits evenly, each device masks and ranks its rows.
    mesh = sharding.data_mesh()
    n_shards = sharding.shards(mesh)
    batch_size = sharding.round_up(min(batch_size, _bucket(len(users))), mesh)
    k_max = min(max(ks), n_items)
    with_ranks = any(m.needs_ranks for m in metrics)
    known_ptr, known_items = _csr_lists(known)
    hist_ptr, hist_items = train.sequences()
    n_relevant = np.diff(test_ptr)[users].astype(np.int32)
    n_known = np.diff(known_ptr)[users]
    # CSR rows hold distinct in-range items, so the candidates are the items not known.
    n_candidates = candidate_counts(known, users, candidates)
    batches = _user_batches(np.arange(len(users)), batch_size)
    # Every batch gets the same shapes (one compilation); batch inputs are built one at a time so
    # memory stays O(batch), never users x longest history.
    hist_width = _bucket(np.diff(hist_ptr)[users].max(initial=1))
    rel_width = _bucket(n_relevant.max())
    seen_width = _bucket(max(int(_shard_counts(n_known[idx], n_real, n_shards).max())
                             for idx, n_real in batches))

    def histories(batch_users: np.ndarray) -> tuple[jax.Array, jax.Array]:
        lists = padded_lists(hist_ptr, hist_items, batch_users, pad=n_items, width=hist_width)
        return sharding.put_rows(lists, mesh)

    on_demand_s = [0.0]  # histories built inside score's timing: counted in rank_s instead

    def on_demand(batch_users: np.ndarray) -> tuple[jax.Array, jax.Array]:
        t0 = time.perf_counter()
        lists = histories(batch_users)
        on_demand_s[0] += time.perf_counter() - t0
        return lists

    def inputs(idx: np.ndarray, n_real: int) -> tuple[Any, ...]:
        """The batch's device inputs; its history ahead too once the model is seen to read it
        (on the first batch), else on demand (:meth:`UserBatch.on_demand`)."""
        batch_users = users[idx]
        relevant, _ = padded_lists(test_ptr, test_items, batch_users, pad=n_items,
                                   width=rel_width)
        seen = sharded_seen(known_ptr, known_items, batch_users, n_real, n_shards=n_shards,
                            n_items=n_items, width=seen_width)
        on_device = sharding.put_rows(
            (batch_users, np.arange(len(idx)) < n_real, seen, relevant), mesh)
        lists = histories(batch_users) if reads_history else None
        return batch_users, lists, *on_device

    reads_history = False

    fitted = sharding.replicate_fields(fitted, mesh)

    # The next batch's inputs are built while the device ranks the current one (asynchronous
    # dispatch): ML-1M evaluation ~71 -> ~62 ms. The model's scoring is timed alone (blocking
    # before and after it); rank_s is the rest of the loop: inputs, masking and top-k.
    parts, t_score = [], 0.0
    t_loop = time.perf_counter()
    with CompileClock() as clock:
        ready = inputs(*batches[0])
        for i, (idx, n_real) in enumerate(batches):
            host_users, lists, batch_users, valid, seen, relevant = ready
            if lists is None:
                batch = UserBatch.on_demand(batch_users, valid, n_items,
                                            partial(on_demand, host_users))
            else:
                batch = UserBatch(batch_users, *lists, valid, n_items)
            if parts:
                jax.block_until_ready(parts[-1][0])
            t0, c0, h0 = time.perf_counter(), clock.seconds(), on_demand_s[0]
            scores = jax.block_until_ready(fitted.score(batch))
            t_score += (time.perf_counter() - t0) - (clock.seconds() - c0) - (on_demand_s[0] - h0)
            if scores.shape != (len(idx), n_items):
                raise ModelError(f"score() returned shape {tuple(scores.shape)}, expected "
                                 f"({len(idx)}, {n_items}) = (batch size, n_items)")
            if not jnp.issubdtype(scores.dtype, jnp.floating):
                raise ModelError(f"score() returned dtype {scores.dtype}, expected a float dtype")
            if allowed is not None:
                scores = _restrict(scores, allowed)
            parts.append((rank_placed(scores, seen, relevant, k_max=k_max,
                                      with_ranks=with_ranks, mesh=mesh), n_real))
            reads_history = reads_history or batch.history_read
            if i + 1 < len(batches):
                ready = inputs(*batches[i + 1])
        jax.block_until_ready(parts[-1][0])
        t_compile = clock.seconds()
    t_rank = time.perf_counter() - t_loop - t_score - t_compile
    joined = {k: np.concatenate([np.asarray(p[k])[:n_real] for p, n_real in parts])
              for k in parts[0][0]}
    if joined["nan"].any():
        raise ModelError(f"score() returned NaN for user {int(users[joined['nan']][0])}")
    ctx = RankingContext(users=users, topk=joined["topk"], hits=joined["hits"],
                         n_relevant=n_relevant, n_candidates=n_candidates,
                         n_items=n_items, relevant_ranks=joined.get("ranks"),
                         item_popularity=item_popularity(train if fit_on is None else fit_on))
    t_metric = time.perf_counter()
    values, per_user = _compute(metrics, ctx, ks)
    timings = {
        "score_s": t_score,
        "rank_s": t_rank,
        "metrics_s": time.perf_counter() - t_metric,
        "eval_compile_s": t_compile,
        "eval_total_s": time.perf_counter() - t_start,
    }
    counts = {"users_evaluated": len(users),
              "users_excluded": int(((known.user_counts > 0) & (test.user_counts == 0)).sum()),
              "batch_size": batch_size, "batches": len(batches)}
    return EvalResult(values, per_user, users, timings, counts)


def item_popularity(x: Interactions) -> np.ndarray:
    """Training interactions per item, ``[n_items]`` int64, read-only (metrics share one array)."""
    counts = np.bincount(x.item, minlength=x.n_items).astype(np.int64)
    counts.flags.writeable = False
    return counts


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


def evaluate_points(fitted: FittedModel, *, users: np.ndarray, items: np.ndarray, target: np.ndarray,
                    metrics: list[MetricSpec], chunk: int = 8192) -> EvalResult:
    """Rating or binary evaluation of ``fitted.predict`` on (user, item) pairs, in fixed-size chunks."""
    if not isinstance(fitted, RatingModel):
        raise ModelError(f"{type(fitted).__name__} has no predict(users, items), so it cannot serve "
                         "the rating or binary task; implement recbench.api.RatingModel or use "
                         "task = \"ranking\"")
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
    else:
        raise DataError("binary task: could not draw a negative item for every test pair (users "
                        "who interacted with nearly every item); use data with ratings instead")
    users = np.concatenate([test.user, test.user])
    items = np.concatenate([test.item, neg])
    label = np.concatenate([np.ones(len(test)), np.zeros(len(test))])
    return users, items, label
