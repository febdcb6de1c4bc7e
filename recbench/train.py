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
(:func:`epoch_batches`), run as one ``lax.scan`` inside one compiled function. The function is
compiled ahead of time (``jax.jit(...).lower(...).compile()``), so compile time is measured
apart from the steady-state epoch time and each fit compiles at most once: an identical program
(same shapes, hyperparameters and loss) reuses the executable compiled before in this process
(:func:`compile_cached`), and JAX's persistent compilation cache, when the harness enables it,
serves repeated runs.

After each epoch the mean loss is checked on the host: a NaN or infinite loss stops training with
a :class:`~recbench.errors.ModelError` naming the epoch (the runner records the trial as failed and
goes on). With a ``validate(params) -> float`` callback, training evaluates every ``eval_every``
epochs (and after the last one), keeps the best parameters, and stops after ``patience``
evaluations in a row without improvement (RecBole's ``stopping_step``). Epochs are 1-based in every
message and timing.

:func:`sample_negatives` draws uniform negatives on the device, rejecting a user's known positives
through a users x items bit matrix when it is small (2.8 MB at ML-1M size), else by bisection in a
CSR structure (int32-safe at any size).
:func:`ranking_validator` turns a scoring model into a metric@k validation callback through
:func:`recbench.evaluate.evaluate_ranking`.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .data import Interactions
from .errors import ModelError
from .specs import MetricSpec

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


def shuffle(key: jax.Array, n: int, rounds: int = 4) -> jax.Array:
    """A pseudo-random permutation of ``0..n-1`` (int32 ``[n]``) in O(n), without a sort.

    A keyed ``rounds``-round Feistel network is a bijection on ``[0, 4^h)`` (``4^h >= n``, so at
    most ``4n`` elements); the values below ``n`` are compacted in order with a cumulative sum.
    ``jax.random.permutation`` sorts, and XLA's CPU sort takes ~0.4 s for 1M rows: longer than a
    whole BPR epoch. Round keys come from ``key``: the same key gives the same permutation.
    """
    half = max(1, -(-max(1, (n - 1).bit_length()) // 2))
    mask = jnp.uint32((1 << half) - 1)
    round_keys = jax.random.bits(key, (rounds,), jnp.uint32)
    x = jnp.arange(1 << (2 * half), dtype=jnp.uint32)
    left, right = x >> half, x & mask
    for r in range(rounds):
        left, right = right, left ^ (_mix32(right, round_keys[r]) & mask)
    out = ((left << half) | right).astype(jnp.int32)
    keep = out < n
    pos = jnp.cumsum(keep.astype(jnp.int32)) - 1
    return jnp.zeros(n, jnp.int32).at[jnp.where(keep, pos, n)].set(out, mode="drop")


def epoch_batches(n_rows: int, batch_size: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A shuffled pass over ``n_rows`` rows as fixed-shape batches (jit-friendly; sizes static).

    Returns ``(index, mask)``, both ``[n_batches, batch_size]`` with
    ``n_batches = ceil(n_rows / batch_size)``: ``index`` int32 row ids in a pseudo-random order
    (:func:`shuffle`), the tail of the last batch padded with row 0; ``mask`` float32, 1 for a real row
    and 0 for padding. Every row appears exactly once among the unmasked entries.
    """
    if n_rows < 1 or batch_size < 1:
        raise ModelError(f"epoch_batches: need n_rows >= 1 and batch_size >= 1, got {n_rows} "
                         f"and {batch_size}")
    n_batches = -(-n_rows // batch_size)
    total = n_batches * batch_size
    perm = shuffle(key, n_rows)
    index = jnp.zeros(total, jnp.int32).at[:n_rows].set(perm)
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
    indices = m.indices.astype(np.int32)
    if len(indices) == 0:
        indices = np.zeros(1, np.int32)
    longest = int(np.diff(m.indptr).max(initial=0))
    steps = max(1, math.ceil(math.log2(longest + 1)))
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


def ranking_validator(make_fitted: Callable[[Any], Any], train: Interactions,
                      valid: Interactions, *, metric: MetricSpec, k: int = 10,
                      batch_size: int = 256) -> Callable[[Any], float]:
    """A ``validate(params) -> float`` callback: ``metric@k`` of ``make_fitted(params)`` on ``valid``.

    Full ranking over all items with the training items masked, through
    :func:`recbench.evaluate.evaluate_ranking` (so validation measures what the test measures).
    ``metric`` is a ranking :class:`~recbench.specs.MetricSpec`, e.g. the registered NDCG.
    """
    from .evaluate import evaluate_ranking  # evaluate imports nothing from here; avoids a cycle

    def validate(params: Any) -> float:
        result = evaluate_ranking(make_fitted(params), train=train, test=valid,
                                  metrics=[metric], ks=(k,), batch_size=batch_size)
        return result.metrics[f"{metric.name}@{k}"]

    return validate


# ---------------------------------------------------------------- the loop


@dataclass
class FitResult:
    """What :func:`fit_loop` returns: the best parameters, timings and the per-epoch history."""

    params: Any
    timings: dict[str, float]
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    validation: list[tuple[int, float]] = field(default_factory=list)  # (epoch, value)


def make_epoch(loss_fn: LossFn, optimizer: optax.GradientTransformation, n_rows: int,
               batch_size: int) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """The pure epoch function ``(params, opt_state, key, data, aux) -> (params, opt_state, loss)``.

    One shuffled pass (:func:`epoch_batches`) under ``lax.scan``; ``loss`` is the mean of the
    per-batch losses weighted by their real rows. Not jitted: :func:`fit_loop` compiles it.
    """

    def epoch(params, opt_state, key, data, aux):
        k_perm, k_steps = jax.random.split(key)
        index, mask = epoch_batches(n_rows, batch_size, k_perm)
        step_keys = jax.random.split(k_steps, index.shape[0])

        def step(carry, xs):
            params, opt_state = carry
            idx, m, k = xs
            # The barrier materialises the batch: otherwise XLA may fuse the row gather into
            # every consumer (e.g. an embedding gather), recomputing it per embedding column.
            batch = jax.lax.optimization_barrier({name: col[idx] for name, col in data.items()})
            batch["mask"] = m
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, k, aux)
            # optax mixes Python floats and int32 step counts (Adam's bias correction), which
            # strict dtype promotion rejects; the loss itself is still traced under the caller's
            # promotion rules.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            return (params, opt_state), (loss, m.sum())

        (params, opt_state), (losses, weights) = jax.lax.scan(
            step, (params, opt_state), (index, mask, step_keys))
        return params, opt_state, (losses * weights).sum() / weights.sum()

    return epoch


_COMPILED: OrderedDict[str, Any] = OrderedDict()
_COMPILED_MAX = 32
_COMPILED_LOCK = threading.Lock()


def compile_cached(lowered: Any, args: Any = None) -> Any:
    """``lowered.compile()``, reusing the executable of an identical program compiled before.

    Keyed by a SHA-256 of the lowered program text, the placement of ``args`` (the arguments it was
    lowered for) and the default device: a refit with the same shapes, hyperparameters and loss
    (another seed, a rating model fitted again for another task) skips XLA compilation even though
    each fit builds a fresh Python function. Keeps the last 32.
    """
    placement = sorted({str(getattr(a, "sharding", None)) for a in jax.tree.leaves(args)})
    ident = [lowered.as_text(), repr(placement), str(jax.config.jax_default_device),
             repr(jax.devices())]
    digest = hashlib.sha256("\x1e".join(ident).encode()).hexdigest()
    with _COMPILED_LOCK:
        if digest in _COMPILED:
            _COMPILED.move_to_end(digest)
            return _COMPILED[digest]
    compiled = lowered.compile()
    with _COMPILED_LOCK:
        _COMPILED[digest] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return compiled


def fit_loop(params: Any, loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
             data: Mapping[str, Any], key: jax.Array, epochs: int, batch_size: int,
             aux: Any = None, validate: Callable[[Any], float] | None = None,
             eval_every: int = 1, patience: int = 10, higher_is_better: bool = True,
             min_delta: float = 0.0) -> FitResult:
    """Train ``params`` for up to ``epochs`` epochs over the rows of ``data``; see the module doc.

    ``data`` maps names to arrays sharing their first dimension (the rows, e.g. user, item,
    rating); ``batch_size`` is clipped to the number of rows. ``key`` drives shuffling and the
    per-step keys (epoch ``e`` uses ``fold_in(key, e)``): the same key gives the same result.

    Returns the parameters of the best validation (the last epoch's without ``validate``) and
    ``timings``: ``fit_compile_s`` (lower + compile of the epoch function, near zero when
    :func:`compile_cached` already holds the same program), ``fit_steady_s``
    (training epochs after compilation, validation excluded), ``epoch_s`` (median epoch),
    ``epoch_min_s`` (fastest epoch: the least disturbed by other load on the machine),
    ``valid_s`` (validation callbacks), ``epochs_run`` and ``best_epoch``.

    Raises :class:`ModelError` naming the epoch when the loss or the validation value is NaN or
    infinite.
    """
    if epochs < 1:
        raise ModelError(f"fit_loop: epochs must be >= 1, got {epochs}")
    if eval_every < 1 or patience < 1:
        raise ModelError(f"fit_loop: eval_every and patience must be >= 1, got {eval_every} and "
                         f"{patience}")
    data = {name: jnp.asarray(col) for name, col in data.items()}
    sizes = {int(col.shape[0]) for col in data.values()}
    if len(sizes) != 1:
        raise ModelError(f"fit_loop: data columns disagree on the number of rows: "
                         f"{ {n: int(c.shape[0]) for n, c in data.items()} }")
    n_rows = sizes.pop()
    if n_rows == 0:
        raise ModelError("fit_loop: no training rows; the training split is empty")
    batch_size = max(1, min(batch_size, n_rows))
    opt_state = optimizer.init(params)
    epoch_fn = make_epoch(loss_fn, optimizer, n_rows, batch_size)

    t0 = time.perf_counter()
    args = (params, opt_state, key, data, aux)
    compiled = compile_cached(jax.jit(epoch_fn).lower(*args), args)
    compile_s = time.perf_counter() - t0

    best_params, best_value, best_epoch = params, None, 0
    losses: list[float] = []
    validation: list[tuple[int, float]] = []
    epoch_times: list[float] = []
    valid_s, stale, epoch = 0.0, 0, 0
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        params, opt_state, loss = compiled(params, opt_state, jax.random.fold_in(key, epoch),
                                           data, aux)
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
    timings = {
        "fit_compile_s": compile_s,
        "fit_steady_s": float(sum(epoch_times)),
        "epoch_s": float(statistics.median(epoch_times)),
        "epoch_min_s": float(min(epoch_times)),
        "valid_s": valid_s,
        "epochs_run": epoch,
        "best_epoch": best_epoch,
    }
    return FitResult(best_params, timings, losses, validation)
