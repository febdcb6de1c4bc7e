"""Shared training-loop helpers for gradient-trained models (public API for plugin authors).

A gradient model supplies three things and :func:`fit_loop` does the rest:

- ``params``: a pytree of float32 arrays (a dict of embedding tables, an ``nnx.State``, ...);
- ``loss_fn(params, batch, key, aux) -> scalar``: the mean loss of one fixed-size batch.
  ``batch`` is a dict holding ``batch_size`` rows of every per-row array in ``data`` plus
  ``batch["mask"]``, float32 ``[batch_size]``: 1 for a real row, 0 for padding in the last batch
  (weight the per-row losses with it, see :func:`masked_mean`). ``key`` is a fresh typed key per
  step (negative sampling, dropout). ``aux`` is passed whole to every step (CSR positives,
  histories, constants): arrays there are arguments of the compiled function, not constants baked
  into it;
- an ``optax`` optimizer.

One epoch = one shuffled pass over the rows of ``data`` in fixed-size batches
(:func:`epoch_batches`), run as one ``lax.fori_loop`` inside one module-level jitted function whose
static arguments are ``loss_fn``, the optimizer and the batch size. Compile once per shape: the row
count is a traced argument and the rows are padded to :func:`bucket_size` (at most 25% more), the
batches of padding never run (the loop's trip count is traced), so a refit on another seed or fold of the same size class
reuses the compiled epoch. For that an equal ``loss_fn`` and optimizer must come back on
a refit: define the loss at module level and put data-dependent scalars (a mean rating, ...) in
``aux`` as arrays, and build the optimizer with :func:`cached_optimizer`
(``optax.adam(lr)`` makes fresh closures on every call, which JAX cannot recognise as the same;
``cached_optimizer`` also keeps the learning rate out of the program).
Compile time is measured by the caller (the runner wraps ``fit`` in a
:class:`~recbench.timing.CompileClock`), not here.

After each epoch the mean loss is checked on the host: a NaN or infinite loss stops training with
a :class:`~recbench.errors.ModelError` naming the epoch (the runner records the trial as failed and
goes on). With a ``validate(params) -> float`` callback, training evaluates every ``eval_every``
epochs (and after the last one), keeps the best parameters, and stops after ``patience``
evaluations in a row without improvement (RecBole's ``stopping_step``). Epochs are 1-based in every
message and timing.

:func:`sample_negatives` draws uniform negatives on the device, rejecting a user's known positives
through a users x items bit matrix when it is small (2.8 MB at ML-1M size), else by bisection in a
CSR structure (int32-safe at any size).
:func:`ranking_validator` turns a scoring model into a metric@k validation callback ranked by
:func:`recbench.evaluate.rank_batch` (split over the devices as the evaluator does), its inputs
built once per fit.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from . import sharding
from .data import Interactions
from .errors import ModelError
from .shapes import bucket_size, pad_rows
from .specs import MetricSpec

# One line per validated epoch (loss and validation metric); `recbench run -v` shows them.
log = logging.getLogger("recbench.train")

LossFn = Callable[[Any, dict[str, jax.Array], jax.Array, Any], jax.Array]


# ---------------------------------------------------------------- batching


def _mix32(x: jax.Array, k: jax.Array) -> jax.Array:
    """A keyed 32-bit mixing function (MurmurHash3's finaliser applied to ``x ^ k``)."""
    x = x ^ k
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def shuffle(key: jax.Array, n: int | jax.Array, rounds: int = 4, *, size: int | None = None
            ) -> jax.Array:
    """A pseudo-random permutation of ``0..n-1`` (int32 ``[n]``) in O(n), without a sort.

    With ``size`` (static, ``>= n``), ``n`` may be a traced scalar: the result is ``[size]``, its
    first ``n`` entries the permutation and the rest 0 (one compiled program for every ``n``).

    A keyed ``rounds``-round Feistel network is a bijection on ``[0, 4^h)`` (``4^h >= n``, so at
    most ``4n`` elements); the values below ``n`` are compacted in order with a cumulative sum.
    ``jax.random.permutation`` sorts, and XLA's CPU sort takes ~0.4 s for 1M rows: longer than a
    whole BPR epoch. Round keys come from ``key``: the same key gives the same permutation.
    """
    size = int(n) if size is None else size
    half = max(1, -(-max(1, (size - 1).bit_length()) // 2))
    mask = jnp.uint32((1 << half) - 1)
    round_keys = jax.random.bits(key, (rounds,), jnp.uint32)
    x = jnp.arange(1 << (2 * half), dtype=jnp.uint32)
    left, right = x >> half, x & mask
    for r in range(rounds):
        left, right = right, left ^ (_mix32(right, round_keys[r]) & mask)
    out = ((left << half) | right).astype(jnp.int32)
    keep = out < n
    pos = jnp.cumsum(keep.astype(jnp.int32)) - 1
    return jnp.zeros(size, jnp.int32).at[jnp.where(keep, pos, size)].set(out, mode="drop")


def epoch_batches(n_rows: int | jax.Array, batch_size: int, key: jax.Array, *,
                  size: int | None = None) -> tuple[jax.Array, jax.Array]:
    """A shuffled pass over ``n_rows`` rows as fixed-shape batches (jit-friendly; sizes static).

    With ``size`` (static, ``>= n_rows``: the padded row count) ``n_rows`` may be traced; the
    shapes then follow ``size`` and the batches past the real rows are all padding.

    Returns ``(index, mask)``, both ``[n_batches, batch_size]`` with
    ``n_batches = ceil(n_rows / batch_size)``: ``index`` int32 row ids in a pseudo-random order
    (:func:`shuffle`), the tail of the last batch padded with row 0; ``mask`` float32, 1 for a real row
    and 0 for padding. Every row appears exactly once among the unmasked entries.
    """
    static = size is None
    size = int(n_rows) if static else size
    if size < 1 or batch_size < 1 or (static and n_rows < 1):
        raise ModelError(f"epoch_batches: need n_rows >= 1 and batch_size >= 1, got {n_rows} "
                         f"and {batch_size}")
    n_batches = -(-size // batch_size)
    total = n_batches * batch_size
    perm = shuffle(key, n_rows, size=size)
    index = jnp.zeros(total, jnp.int32).at[:size].set(perm)
    mask = (jnp.arange(total) < n_rows).astype(jnp.float32)
    return index.reshape(n_batches, batch_size), mask.reshape(n_batches, batch_size)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``values`` (``[B]`` or ``[B, ...]``) over the rows where ``mask`` is 1."""
    values = values.reshape(values.shape[0], -1).mean(axis=1)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


# ---------------------------------------------------------------- negative sampling


BITSET_MAX_BYTES = 64 << 20


def csr_positives(x: Interactions, *, bitset_max_bytes: int = BITSET_MAX_BYTES
                  ) -> dict[str, jax.Array]:
    """Each user's known items as device arrays for :func:`is_positive` / :func:`sample_negatives`.

    When a users x items bit matrix fits in ``bitset_max_bytes`` (64 MiB: 2.8 MB at ML-1M size,
    not at ML-20M size) it is ``{"bits": uint32 [n_users, ceil(n_items / 32)]}``, one gather per
    lookup. Otherwise a CSR structure searched by bisection: ``indptr`` int32 ``[n_users + 1]``,
    ``indices`` int32 sorted within each user (at least one entry so gathers stay in bounds), and
    ``steps``, a zeros array whose *length* is the number of bisection steps (a static shape).
    """
    m = x.csr
    words = -(-x.n_items // 32)
    if x.n_users * words * 4 <= bitset_max_bytes:
        rows = np.repeat(np.arange(x.n_users, dtype=np.int64), np.diff(m.indptr))
        cols = m.indices.astype(np.int64)
        flat = np.bincount(rows * words + (cols >> 5), weights=(1 << (cols & 31)).astype(np.float64),
                           minlength=x.n_users * words)  # pairs are unique: sum == bitwise or
        return {"bits": jnp.asarray(flat.astype(np.uint32).reshape(x.n_users, words))}
    # Lengths padded to bucket sizes, so that splits of one size class share compiled code;
    # extra bisection steps are no-ops once the search interval is empty.
    indices = pad_rows(m.indices.astype(np.int32), bucket_size(max(1, len(m.indices))))
    longest = int(np.diff(m.indptr).max(initial=0))
    steps = -(-max(1, math.ceil(math.log2(longest + 1))) // 4) * 4
    return {"indptr": jnp.asarray(m.indptr, jnp.int32), "indices": jnp.asarray(indices),
            "steps": jnp.zeros(steps, jnp.int32)}


def is_positive(positives: Mapping[str, jax.Array], users: jax.Array, items: jax.Array
                ) -> jax.Array:
    """Whether each ``(users[j], items[j])`` is a known interaction (``positives`` from
    :func:`csr_positives`); same shape as ``users``."""
    if "bits" in positives:
        word = positives["bits"][users, items >> 5]
        return ((word >> (items & 31).astype(jnp.uint32)) & jnp.uint32(1)) == jnp.uint32(1)
    indptr, indices = positives["indptr"], positives["indices"]
    lo, hi = indptr[users], indptr[users + 1]  # search [lo, hi)

    def step(carry, _):
        lo, hi = carry
        mid = (lo + hi) // 2
        go_right = (indices[jnp.minimum(mid, indices.shape[0] - 1)] < items) & (lo < hi)
        return (jnp.where(go_right, mid + 1, lo), jnp.where(go_right | (lo >= hi), hi, mid)), None

    (lo, hi), _ = jax.lax.scan(step, (lo, hi), positives["steps"])
    end = indptr[users + 1]
    return (lo < end) & (indices[jnp.minimum(lo, indices.shape[0] - 1)] == items)


def sample_negatives(key: jax.Array, users: jax.Array, n_items: int,
                     positives: Mapping[str, jax.Array] | None = None, shape: tuple[int, ...] = (),
                     rounds: int = 3) -> jax.Array:
    """Items drawn uniformly for each user in ``users`` (shape ``users.shape + shape``).

    With ``positives`` (from :func:`csr_positives`), ``rounds + 1`` candidates are drawn and the
    first that is not one of the user's known items is kept, i.e. a colliding draw is redrawn up
    to ``rounds`` times (RecBole redraws until none collides); when every candidate collides the
    last is kept (a user who has seen nearly every item has no negative to give). Runs on the
    device with fixed shapes. Draws are ``bits % n_items`` over 32-bit random words: one random
    word per candidate (``randint`` spends two), non-uniform by at most ``n_items / 2**32``.
    """
    full = users.shape + tuple(shape)
    n_draws = rounds + 1 if positives is not None else 1
    bits = jax.random.bits(key, (n_draws, *full), jnp.uint32)
    items = (bits % jnp.uint32(n_items)).astype(jnp.int32)
    if positives is None:
        return jax.lax.optimization_barrier(items[0])
    u = jnp.broadcast_to(users.reshape(users.shape + (1,) * len(shape)), full)
    out = items[rounds]
    for r in reversed(range(rounds)):  # the earliest non-colliding candidate wins
        out = jnp.where(is_positive(positives, u, items[r]), out, items[r])
    # Materialise the ids: without the barrier XLA may fuse this whole computation into each
    # consumer (an embedding gather and its scatter-add), redoing it per embedding column.
    return jax.lax.optimization_barrier(out)


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class _ValidationInputs:
    """One fit's validation batches, built on the host and uploaded once."""

    # per batch: (UserBatch, seen training items as flat row * n_items + item ids,
    # relevant [B, R] validation items padded with n_items): rank_batch's inputs
    batches: list[tuple[Any, jax.Array, jax.Array]]
    n_real: int  # users evaluated (rows of the batches that are not padding)
    context: dict[str, Any]  # the host side of the RankingContext
    mesh: Mesh | None = None  # the devices the batches are split over (None: one device)
    allowed: jax.Array | None = None  # the candidate items (None: every item)


def _validation_inputs(train: Interactions, valid: Interactions, batch_size: int,
                       candidates: np.ndarray | None = None) -> _ValidationInputs:
    from .data import UserBatch
    from .evaluate import (_shard_counts, candidate_counts, item_popularity, padded_lists,
                           sharded_seen)  # no cycle

    n_items = train.n_items
    v, t = valid.csr, train.csr
    test_ptr, test_items = v.indptr.astype(np.int64), v.indices.astype(np.int32)
    users = np.flatnonzero(np.diff(test_ptr) > 0).astype(np.int32)
    if len(users) == 0:
        raise ModelError("validation: no user has a validation item; check the split")
    # The batch size is a power of two (not the exact user count) and the list widths too, so
    # that splits of one size class share the compiled scoring and ranking programs.
    # Rounded to the device count: each device ranks its part of a batch (as the evaluator).
    mesh = sharding.data_mesh()
    size = sharding.round_up(min(batch_size, 1 << max(3, (len(users) - 1).bit_length())), mesh)
    n_batches = -(-len(users) // size)
    padded = pad_rows(users, n_batches * size)
    hist_ptr, hist_items = train.sequences()
    known_ptr, known_items = t.indptr.astype(np.int64), t.indices.astype(np.int32)

    def lists(ptr: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        longest = max(1, int(np.diff(ptr)[users].max(initial=1)))
        width = 1 << max(3, (longest - 1).bit_length())
        return padded_lists(ptr, values, padded, pad=n_items, width=width)

    (history, lengths), (relevant, _) = lists(hist_ptr, hist_items), lists(test_ptr, test_items)
    real = np.arange(n_batches * size) < len(users)
    # Only the real rows' training items are masked (padding rows are cut from the results).
    n_shards = sharding.shards(mesh)
    n_real = [min(size, len(users) - b * size) for b in range(n_batches)]
    known_counts = np.diff(known_ptr)[padded]
    most_seen = max(int(_shard_counts(known_counts[b * size:(b + 1) * size], n_real[b],
                                      n_shards).max()) for b in range(n_batches))
    seen_width = 1 << max(3, (max(1, most_seen) - 1).bit_length())
    batches = []
    for b in range(n_batches):
        rows = slice(b * size, (b + 1) * size)
        seen = sharded_seen(known_ptr, known_items, padded[rows], n_real[b], n_shards=n_shards,
                            n_items=n_items, width=seen_width)
        u, h, n, r, s, rel = sharding.put_rows((padded[rows], history[rows], lengths[rows],
                                                real[rows], seen, relevant[rows]), mesh)
        batches.append((UserBatch(u, h, n, r, n_items), s, rel))
    context = {"users": users, "n_relevant": np.diff(test_ptr)[users].astype(np.int32),
               "n_candidates": candidate_counts(train, users, candidates),
               "n_items": n_items, "item_popularity": item_popularity(train)}
    allowed = None if candidates is None else jnp.asarray(candidates)
    return _ValidationInputs(batches, len(users), context, mesh, allowed)


def ranking_validator(make_fitted: Callable[[Any], Any], train: Interactions,
                      valid: Interactions, *, metric: MetricSpec, k: int = 10,
                      batch_size: int = 256, candidates: str = "all") -> Callable[[Any], float]:
    """A ``validate(params) -> float`` callback: ``metric@k`` of ``make_fitted(params)`` on ``valid``.

    Full ranking with the training items masked, ranked by
    :func:`recbench.evaluate.rank_batch`, the function the evaluator ranks with (same masking,
    top-k and tie rule, so validation measures what the test measures: the value equals
    ``evaluate_ranking``'s on the same data). ``candidates`` is the protocol's rule, which the
    model gets as ``ModelContext.candidates``: ``"all"`` ranks every item; ``"cold"`` ranks only
    the validation items without training interactions, among themselves, as the test ranks the
    cold test items (a user whose validation items all have training interactions drops out).
    The batches (histories, masks, validation items) are built and uploaded
    once, here, not on every call. ``metric`` is a ranking :class:`~recbench.specs.MetricSpec`,
    e.g. the registered NDCG.
    """
    # evaluate imports nothing from here; importing it here avoids a cycle
    from .evaluate import _restrict, cold_candidates, rank_placed
    from .specs import RankingContext

    allowed = None
    if candidates == "cold":
        allowed = cold_candidates(train, valid)
        if not allowed.any():
            raise ModelError('validation: candidates = "cold" but no validation item is cold '
                             '(every one has training interactions); use the cold-items splitter')
        valid = valid.subset(allowed[valid.item])
    elif candidates != "all":
        raise ModelError(f'validation: candidates must be "all" or "cold", got {candidates!r}')
    inputs = _validation_inputs(train, valid, batch_size, allowed)
    k_max = min(k, train.n_items)
    with_ranks = bool(metric.needs_ranks)

    def validate(params: Any) -> float:
        fitted = make_fitted(params)
        parts = []
        for batch, seen, relevant in inputs.batches:
            scores = fitted.score(batch)
            if inputs.allowed is not None:
                scores = _restrict(scores, inputs.allowed)
            parts.append(rank_placed(scores, seen, relevant, k_max=k_max, with_ranks=with_ranks,
                                     mesh=inputs.mesh))
        joined = {name: np.concatenate([np.asarray(p[name]) for p in parts])[:inputs.n_real]
                  for name in ("topk", "hits", "nan", *(("ranks",) if with_ranks else ()))}
        if joined["nan"].any():
            raise ModelError(f"score() returned NaN for user "
                             f"{int(inputs.context['users'][joined['nan']][0])}")
        ctx = RankingContext(topk=joined["topk"], hits=joined["hits"],
                             relevant_ranks=joined.get("ranks"), **inputs.context)
        return float(np.mean(np.asarray(metric.compute(ctx, k), np.float64)))

    return validate


# ---------------------------------------------------------------- the loop


@dataclass
class FitResult:
    """What :func:`fit_loop` returns: the best parameters, the fit's extras for a fitted model's
    ``fit_info`` (``epochs_run``, ``best_epoch``, ``epoch_s``, ``valid_s``) and the per-epoch
    history."""

    params: Any
    info: dict[str, int | float]
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    validation: list[tuple[int, float]] = field(default_factory=list)  # (epoch, value)


class _TracedHyperparameters(optax.GradientTransformationExtraArgs):
    """An optimizer whose numeric hyperparameters live in its state (``optax.inject_hyperparams``).
    As a static argument of the compiled epoch it equals every optimizer of the same factory and
    non-numeric arguments, whatever those numbers are: its update reads them from the state."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.update is other.update  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.update)


@functools.lru_cache(maxsize=64)
def _injected(factory: Callable[..., Any], static: tuple[tuple[str, Any], ...],
              traced: tuple[str, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``factory`` with the ``traced`` arguments as state (the others, defaults included, stay
    Python constants, so the arithmetic is the plain factory's), and one shared update."""
    fixed = frozenset(inspect.signature(factory).parameters) - set(traced)
    make = optax.inject_hyperparams(factory, static_args=fixed)
    return make, make(**dict(static), **{name: 1.0 for name in traced}).update


def cached_optimizer(factory: Callable[..., optax.GradientTransformation], **hyper: Any
                     ) -> optax.GradientTransformation:
    """``factory(**hyper)`` (e.g. ``cached_optimizer(optax.adam, learning_rate=1e-3)``) for
    :func:`fit_loop`: the floats passed (a learning rate) become traced state, so a refit, or a fit
    with another learning rate (a tuning grid), reuses the compiled epoch; other arguments
    (integers an optimizer may branch on, a tuple of frozen table names) are part of the
    compiled program."""
    traced = {k: float(v) for k, v in hyper.items() if isinstance(v, (float, np.floating))}
    static = tuple(sorted((k, v) for k, v in hyper.items() if k not in traced))
    make, update = _injected(factory, static, tuple(sorted(traced)))
    return _TracedHyperparameters(make(**dict(static), **traced).init, update)


def _epoch(params: Any, opt_state: Any, key: jax.Array, epoch: jax.Array,
           data: dict[str, jax.Array], aux: Any, n_rows: jax.Array, *, loss_fn: LossFn,
           optimizer: optax.GradientTransformation, batch_size: int, mesh: Mesh | None = None
           ) -> tuple[Any, Any, jax.Array]:
    """Epoch ``epoch`` (traced; its key is ``fold_in(key, epoch)``): one shuffled pass
    (:func:`epoch_batches`) over the first ``n_rows`` (traced) of ``data``'s padded rows: a loop
    over the ``ceil(n_rows / batch_size)`` batches holding real rows (a traced trip count), so the
    batches of padding past them cost no step and no optimizer update.
    ``loss`` is the mean of the per-batch losses weighted by their real rows.

    With a ``mesh``, data-parallel: each batch's rows are split over its devices (a sharding
    constraint; the data, ``aux`` and the parameters are replicated), so XLA runs the loss and
    its gradient on each device's rows and sums the gradients across devices."""
    k_perm, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
    size = next(iter(data.values())).shape[0]
    index, mask = epoch_batches(n_rows, batch_size, k_perm, size=size)
    step_keys = jax.random.split(k_steps, index.shape[0])

    def step(b, carry):
        params, opt_state, total = carry
        idx, m = index[b], mask[b]
        # The barrier materialises the batch: otherwise XLA may fuse the row gather into every
        # consumer (e.g. an embedding gather), recomputing it per embedding column.
        batch = {name: col[idx] for name, col in data.items()}
        batch["mask"] = m
        if mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, sharding.rows(mesh))
        batch = jax.lax.optimization_barrier(batch)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, step_keys[b], aux)
        # optax mixes Python floats and int32 step counts (Adam's bias correction), which strict
        # dtype promotion rejects; the loss itself is still traced under the caller's rules.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, total + loss.astype(jnp.float32) * m.sum()

    n_batches = (n_rows + batch_size - 1) // batch_size
    params, opt_state, total = jax.lax.fori_loop(0, n_batches, step,
                                                 (params, opt_state, jnp.float32(0.0)))
    return params, opt_state, total / n_rows.astype(jnp.float32)


_run_epoch = jax.jit(_epoch, static_argnames=("loss_fn", "optimizer", "batch_size", "mesh"))


def fit_loop(params: Any, loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
             data: Mapping[str, Any], key: jax.Array, epochs: int, batch_size: int,
             aux: Any = None, validate: Callable[[Any], float] | None = None,
             eval_every: int = 1, patience: int = 10, higher_is_better: bool = True,
             min_delta: float = 0.0) -> FitResult:
    """Train ``params`` for up to ``epochs`` epochs over the rows of ``data``; see the module doc.

    ``data`` maps names to arrays sharing their first dimension (the rows, e.g. user, item,
    rating); they are padded to :func:`bucket_size` rows (with row 0's values, never trained on).
    ``batch_size`` is clipped to the padded row count, then rounded up to a multiple of the
    device count: with several devices (:mod:`recbench.sharding`) each batch's rows are split
    over them (data-parallel; the parameters replicated, the gradients summed). ``key`` drives shuffling and the per-step
    keys (epoch ``e`` uses ``fold_in(key, e)``): the same key gives the same result. ``loss_fn``
    and ``optimizer`` are static arguments of the compiled epoch: pass the same objects on a refit
    (module-level loss, :func:`cached_optimizer`) or the epoch compiles again.

    Returns the parameters of the best validation (the last epoch's without ``validate``) and
    ``info``: ``epochs_run``, ``best_epoch``, ``epoch_s`` (median epoch after the first, which
    includes compilation; the only one when one epoch ran) and ``valid_s`` (validation callbacks,
    seconds). Epochs are 1-based.

    Raises :class:`ModelError` naming the epoch when the loss or the validation value is NaN or
    infinite.
    """
    if epochs < 1:
        raise ModelError(f"fit_loop: epochs must be >= 1, got {epochs}")
    if eval_every < 1 or patience < 1:
        raise ModelError(f"fit_loop: eval_every and patience must be >= 1, got {eval_every} and "
                         f"{patience}")
    columns = {name: np.asarray(col) for name, col in data.items()}
    sizes = {int(col.shape[0]) for col in columns.values()}
    if len(sizes) != 1:
        raise ModelError(f"fit_loop: data columns disagree on the number of rows: "
                         f"{ {n: int(c.shape[0]) for n, c in columns.items()} }")
    n_rows = sizes.pop()
    if n_rows == 0:
        raise ModelError("fit_loop: no training rows; the training split is empty")
    size = bucket_size(n_rows)
    mesh = sharding.data_mesh()
    padded = {name: pad_rows(col, size, col[0]) for name, col in columns.items()}
    batch_size = sharding.round_up(max(1, min(batch_size, size)), mesh)
    opt_state = optimizer.init(params)
    if mesh is None:
        padded = {name: jnp.asarray(col) for name, col in padded.items()}
    else:
        params, opt_state, padded, aux = sharding.put_replicated((params, opt_state, padded, aux),
                                                                 mesh)
    real_rows = jnp.int32(n_rows)

    best_params, best_value, best_epoch = params, None, 0
    losses: list[float] = []
    validation: list[tuple[int, float]] = []
    epoch_times: list[float] = []
    valid_s, stale, epoch = 0.0, 0, 0
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        params, opt_state, loss = _run_epoch(params, opt_state, key, np.int32(epoch),
                                             padded, aux, real_rows, loss_fn=loss_fn,
                                             optimizer=optimizer, batch_size=batch_size,
                                             mesh=mesh)
        loss = float(loss)  # waits for the epoch
        epoch_times.append(time.perf_counter() - t)
        losses.append(loss)
        if not math.isfinite(loss):
            raise ModelError(f"training diverged: the mean loss of epoch {epoch} is {loss}; lower "
                             f"the learning rate or raise the regularisation")
        if validate is None:
            best_params, best_epoch = params, epoch
            continue
        if epoch % eval_every and epoch != epochs:
            continue
        t = time.perf_counter()
        try:
            value = float(validate(params))
        except ModelError as e:
            raise ModelError(f"validation after epoch {epoch} failed: {e}") from e
        valid_s += time.perf_counter() - t
        validation.append((epoch, value))
        log.info("epoch %d: loss %.5f, validation %.5f", epoch, loss, value)
        if not math.isfinite(value):
            raise ModelError(f"training diverged: the validation metric after epoch {epoch} is "
                             f"{value}; lower the learning rate or raise the regularisation")
        better = best_value is None or (value > best_value + min_delta if higher_is_better
                                        else value < best_value - min_delta)
        if better:
            best_params, best_value, best_epoch, stale = params, value, epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    info = {"epochs_run": epoch, "best_epoch": best_epoch,
            "epoch_s": float(statistics.median(epoch_times[1:] or epoch_times)),
            "valid_s": valid_s}
    return FitResult(best_params, info, losses, validation)
