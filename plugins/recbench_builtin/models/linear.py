"""Closed-form models: ``ease`` (Steck 2019) and ``ials`` (iALS / WRMF, Hu, Koren, Volinsky 2008).

Both are JAX programs: dense matrix products and batched linear solves on the device, jitted, no
Python loop over users or items.

``ease``: item-item weights ``B = I - P / diag(P)`` with ``P = (X^T X + l2 I)^-1`` and
``diag(B) = 0`` (column ``j`` of ``P`` divided by ``P_jj``). ``X`` is the binary training matrix.
The Gram matrix is accumulated over fixed-size blocks of users (each block densified on the device
by a scatter); the inverse is ``L^-T L^-1`` with the inverse Cholesky factor ``L^-1`` built by
recursive 2x2 blocks, so nearly all of its work is large matrix products (measured on the 2-core
CPU at 3.7k items: 0.40 s against 0.62 s for ``jnp.linalg.inv``'s LU, with the same float32
accuracy; a plain Schur-complement block inverse was faster still but lost up to 10% accuracy on
ill-conditioned systems, i.e. small ``l2``). Scoring a batch is
``multi_hot(history) @ B``: the batch's training history as a multi-hot row built on the device by
a scatter.

``ials``: weighted alternating least squares for implicit feedback. Confidence ``c_ui = 1 + alpha``
on observed pairs (preference 1), 1 elsewhere (preference 0); loss
``sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)``. Each half-epoch solves every user (then
every item) exactly, with the standard trick
``x_u = (Y^T Y + alpha Y_u^T Y_u + reg I)^-1 (1 + alpha) Y_u^T 1``, ``Y_u`` the factors of u's
items: the ``Y^T Y`` term is shared, the rest only touches u's items. Formulation: padded per-row
lists, not the dense matrix. Rows are grouped into buckets by the length of their item list (padded
to the next power of two, at least 8, so padding at most doubles the work); each bucket is
processed in fixed-shape blocks ``[rows, width]`` (at most 64 rows: little padding in a bucket's
last block) under ``lax.scan`` that assemble the ``f x f`` systems (a gather and a batched
product) and add them into every row's system in place; then all rows' systems are solved in one
batched Cholesky call. Padding entries point at an extra all-zero factor row, so they add nothing.
Compile once per shape: the buckets' shapes depend only on the matrix's size and the config (every
power-of-two width up to the number of columns is present; the block count is a power of two),
and blocks holding only padding are skipped by a ``lax.cond``, so a refit on another seed or fold
of the same size class reuses the compiled epoch. One compiled function runs a whole epoch (users,
items, loss); the loss is computed each epoch
without forming the dense users x items matrix (``sum_all s^2 = <X^T X, Y^T Y>``). Items start
from ``N(0, init_std^2)`` drawn from the fit key; users are solved first.

``ease-lowrank``: EASE where an ``n_items x n_items`` inverse does not fit (ML-20M: 26,744 items,
2.9 GB per matrix and ~40 TFLOP for the inverse). ``X^T X`` is replaced by its best rank-``r``
approximation ``V S^2 V^T``, from a randomized SVD of the sparse training matrix (scikit-learn's
``randomized_svd``: sparse products on the host, the Gram is never formed); then
``(V S^2 V^T + l2 I)^-1`` has a closed form (Woodbury) and ``B``'s columns ``-P_j / P_jj`` stay
factored, ``O(n_items r)``. Exact EASE on the kept directions; the discarded ones are treated as
eigenvalue 0 (shrunk fully by ``l2``), which costs little when they are small next to ``l2``.

Defined scores outside the training data (never NaN): a user without training items gets an
all-zero row (EASE: empty history; iALS: the closed form gives ``x_u = 0``), so every item scores 0
and the evaluator's tie rule (lower item index first) orders them. An item without training
interactions has a zero column in ``B`` (EASE) or ``y_i = 0`` (iALS) and scores 0.

Compile and fit time are measured by the harness around ``fit``. The iALS model reports
``fit_info`` (``epochs_run``, ``epoch_s``: the median epoch after the first, which compiles) and
keeps the per-epoch training ``losses``.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import (
    DataclassState,
    Interactions,
    ModelSpec,
    UserBatch,
    bucket_size,
    check,
    restores,
)


def exact_precision() -> jax.lax.Precision:
    """Full float32 matrix products, chosen at trace time: HIGHEST on accelerators (GPUs may use
    TF32 otherwise, too coarse for an inverse); DEFAULT on CPU, where it already is full float32
    and HIGHEST selects a slower kernel (measured here: 1.7x slower batched products)."""
    if jax.default_backend() == "cpu":
        return jax.lax.Precision.DEFAULT
    return jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------- shared helpers


def multi_hot(history: jax.Array, n_items: int, dtype: Any = jnp.float32) -> jax.Array:
    """``[B, n_items]`` 0/1 rows from padded item lists (padding ``>= n_items`` is dropped)."""
    rows = jnp.arange(history.shape[0])[:, None]
    return jnp.zeros((history.shape[0], n_items), dtype).at[rows, history].set(1, mode="drop")


def _rows_of(x: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, items, users)`` of the deduplicated binary training matrix."""
    m = x.csr
    indptr = m.indptr.astype(np.int64)
    users = np.repeat(np.arange(x.n_users, dtype=np.int32), np.diff(indptr))
    return indptr, m.indices.astype(np.int32), users


def symmetric_gram(x: jax.Array) -> jax.Array:
    """``x^T x`` computing only the upper column blocks (10 of 16 products past 2,048 columns)."""
    n = x.shape[1]
    parts = 4 if n >= 2048 else 2 if n >= 1024 else 1
    if parts == 1:
        return jnp.matmul(x.T, x, precision=exact_precision())
    edges = [round(n * p / parts) for p in range(parts + 1)]
    cols = [x[:, a:b] for a, b in zip(edges[:-1], edges[1:])]
    upper = {(a, b): jnp.matmul(cols[a].T, cols[b], precision=exact_precision())
             for a in range(parts) for b in range(a, parts)}
    return jnp.block([[upper[(a, b)] if a <= b else upper[(b, a)].T for b in range(parts)]
                      for a in range(parts)])


@partial(jax.jit, static_argnames=("rows", "n_items"))
def _gram_blocks(r: jax.Array, c: jax.Array, v: jax.Array, *, rows: int, n_items: int
                 ) -> jax.Array:
    def step(g: jax.Array, block: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        br, bc, bv = block
        xb = jnp.zeros((rows, n_items), jnp.float32).at[br, bc].set(bv, mode="drop")
        return g + symmetric_gram(xb), None

    g, _ = jax.lax.scan(step, jnp.zeros((n_items, n_items), jnp.float32), (r, c, v))
    return g


def gram(x: Interactions, user_weight: np.ndarray | None = None,
         item_weight: np.ndarray | None = None, *, block_elements: int = 1 << 27) -> jax.Array:
    """``X^T X`` ``[n_items, n_items]`` float32 on the device, ``X = diag(uw) binary(x) diag(iw)``.

    Users are taken in fixed-size blocks of ``block_elements // n_items`` rows (all users in one
    block up to 128M matrix entries); each block is densified on the device by a scatter from its
    padded (row, column, value) lists and its Gram added under ``lax.scan``: one compiled function.
    """
    indptr, items, users = _rows_of(x)
    vals = np.ones(len(items), np.float32)
    if user_weight is not None:
        vals = vals * np.asarray(user_weight, np.float32)[users]
    if item_weight is not None:
        vals = vals * np.asarray(item_weight, np.float32)[items]
    rows = max(1, min(x.n_users, block_elements // max(1, x.n_items)))
    n_blocks = max(1, -(-x.n_users // rows))
    starts = np.minimum(np.arange(n_blocks + 1) * rows, x.n_users)
    nnz = np.diff(indptr[starts])
    cap = bucket_size(max(1, int(nnz.max(initial=0))))  # shared by splits of one size class
    col = np.arange(cap)
    take = col[None, :] < nnz[:, None]
    src = indptr[starts[:-1]][:, None] + col[None, :]
    r = np.full((n_blocks, cap), rows, np.int32)  # out of range: dropped by the scatter
    c = np.zeros((n_blocks, cap), np.int32)
    v = np.zeros((n_blocks, cap), np.float32)
    r[take] = users[src[take]] - np.repeat(starts[:-1], nnz)
    c[take] = items[src[take]]
    v[take] = vals[src[take]]
    return _gram_blocks(jnp.asarray(r), jnp.asarray(c), jnp.asarray(v), rows=rows,
                        n_items=x.n_items)


def spd_inverse(a: jax.Array) -> jax.Array:
    """Inverse of a symmetric positive-definite matrix: one Cholesky factorisation and solve
    (LAPACK on CPU, cuSOLVER on GPU). Call inside ``jit``. Measured at ML-100K size (1,682 items)
    against a blocked inverse built from matrix products: the same run time, a tenth of the
    compile time (0.56 vs 5.2 s on a loaded 2-core machine), and closer to a float64 inverse."""
    factor = jax.scipy.linalg.cho_factor(a, lower=True)
    return jax.scipy.linalg.cho_solve(factor, jnp.eye(a.shape[0], dtype=a.dtype))


@jax.jit
def _item_item_scores(weights: jax.Array, history: jax.Array) -> jax.Array:
    return multi_hot(history, weights.shape[0]) @ weights


@jax.jit
def _factor_scores(user_emb: jax.Array, item_emb: jax.Array, users: jax.Array) -> jax.Array:
    return user_emb[users] @ item_emb.T


# ---------------------------------------------------------------- EASE


@dataclass(frozen=True)
class EASEConfig:
    """EASE. ``l2``: the L2 penalty on the item-item weights (Steck's lambda; 500 on ML-20M)."""

    l2: float = 500.0

    def __post_init__(self) -> None:
        check(math.isfinite(self.l2) and self.l2 > 0,
              f"l2 must be > 0 (valid range: (0, inf)), got {self.l2}")


@jax.jit
def _ease_weights(g: jax.Array, l2: jax.Array) -> jax.Array:
    n = g.shape[0]
    eye = jnp.eye(n, dtype=jnp.float32)
    p = spd_inverse(g + l2 * eye)
    p = 0.5 * (p + p.T)
    b = -p / jnp.diagonal(p)[None, :]
    return jnp.where(eye > 0, 0.0, b)


@dataclass(frozen=True)
class ItemItemFitted(DataclassState):
    """Scores ``multi_hot(history) @ weights`` (``weights[i, j]``: item i's vote for item j)."""

    weights: jax.Array  # float32 [n_items, n_items]

    def score(self, batch: UserBatch) -> jax.Array:
        return _item_item_scores(self.weights, batch.history)


@dataclass(frozen=True)
class EASEModel:
    cfg: EASEConfig

    restore = restores(ItemItemFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> ItemItemFitted:
        return ItemItemFitted(jax.block_until_ready(_ease_weights(gram(train),
                                                                  jnp.float32(self.cfg.l2))))


# ---------------------------------------------------------------- low-rank EASE


@dataclass(frozen=True)
class LowRankEASEConfig:
    """Low-rank EASE. ``l2`` as EASE's; ``rank``: the number of singular directions of the
    training matrix kept (clipped to the matrix's smaller side); ``power_iterations``: the
    randomized SVD's power iterations (more: a closer approximation of the top directions)."""

    l2: float = 500.0
    rank: int = 256
    power_iterations: int = 4

    def __post_init__(self) -> None:
        check(math.isfinite(self.l2) and self.l2 > 0,
              f"l2 must be > 0 (valid range: (0, inf)), got {self.l2}")
        check(self.rank >= 1, f"rank must be >= 1 (valid range: [1, inf)), got {self.rank}")
        check(self.power_iterations >= 0,
              f"power_iterations must be >= 0 (valid range: [0, inf)), got "
              f"{self.power_iterations}")


@jax.jit
def _low_rank_ease(v: jax.Array, s: jax.Array, l2: jax.Array
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """EASE's weights ``B = I - P / diag(P)`` kept factored, for ``P = (V S^2 V^T + l2 I)^-1``
    (Woodbury: ``P = (I - V W V^T) / l2``, ``W = S^2 / (S^2 + l2)``): ``x B = x * self_weight +
    (x @ left) @ right.T``. ``l2 diag(P) = 1 - sum_k V_jk^2 W_k`` lies in ``(0, 1]``, and the
    diagonal of ``B`` is exactly 0."""
    w = s * s / (s * s + l2)
    scaled_diag = 1.0 - (v * v) @ w  # l2 * diag(P)
    right = v * w[None, :] / scaled_diag[:, None]
    return 1.0 - 1.0 / scaled_diag, v, right


@jax.jit
def _low_rank_scores(self_weight: jax.Array, left: jax.Array, right: jax.Array,
                     history: jax.Array) -> jax.Array:
    x = multi_hot(history, left.shape[0])
    z = jnp.matmul(x, left, precision=exact_precision())
    return x * self_weight[None, :] + jnp.matmul(z, right.T, precision=exact_precision())


@dataclass(frozen=True)
class LowRankItemItemFitted(DataclassState):
    """Scores ``x B`` with EASE's item-item weights ``B`` in factored form (see
    :func:`_low_rank_ease`): ``O(n_items x rank)`` memory instead of ``n_items^2``."""

    self_weight: jax.Array  # float32 [n_items]
    left: jax.Array  # float32 [n_items, rank]
    right: jax.Array  # float32 [n_items, rank]

    def score(self, batch: UserBatch) -> jax.Array:
        return _low_rank_scores(self.self_weight, self.left, self.right, batch.history)


@dataclass(frozen=True)
class LowRankEASEModel:
    cfg: LowRankEASEConfig

    restore = restores(LowRankItemItemFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> LowRankItemItemFitted:
        from sklearn.utils.extmath import randomized_svd  # here: sklearn is slow to import

        m = train.csr.astype(np.float32)
        m.data[:] = 1.0  # the binary matrix, as EASE
        rank = min(self.cfg.rank, *m.shape)
        # Sparse-times-dense products on the host: the n_items^2 Gram is never formed.
        seed = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
        _, s, vt = randomized_svd(m, rank, n_iter=self.cfg.power_iterations,
                                  random_state=seed)
        parts = _low_rank_ease(jnp.asarray(vt.T, jnp.float32), jnp.asarray(s, jnp.float32),
                               jnp.float32(self.cfg.l2))
        return LowRankItemItemFitted(*jax.block_until_ready(parts))


# ---------------------------------------------------------------- iALS


@dataclass(frozen=True)
class IALSConfig:
    """iALS / WRMF. ``alpha``: confidence weight of an observed pair (c = 1 + alpha); ``reg``: L2
    penalty on all factors; ``init_std``: std of the initial item factors; ``block_elements``:
    entries of the ``[rows, width, factors]`` gather per block (memory bound per step)."""

    factors: int = 64
    reg: float = 20.0
    alpha: float = 1.0
    epochs: int = 15
    init_std: float = 0.01
    block_elements: int = 1 << 21

    def __post_init__(self) -> None:
        check(self.factors >= 1,
              f"factors must be >= 1 (valid range: [1, inf)), got {self.factors}")
        check(math.isfinite(self.reg) and self.reg > 0,
              f"reg must be > 0 (valid range: (0, inf)), got {self.reg}")
        check(math.isfinite(self.alpha) and self.alpha >= 0,
              f"alpha must be >= 0 (valid range: [0, inf)), got {self.alpha}")
        check(self.epochs >= 1, f"epochs must be >= 1 (valid range: [1, inf)), got {self.epochs}")
        check(math.isfinite(self.init_std) and self.init_std > 0,
              f"init_std must be > 0 (valid range: (0, inf)), got {self.init_std}")
        check(self.block_elements >= 1,
              f"block_elements must be >= 1 (valid range: [1, inf)), got {self.block_elements}")


def length_buckets(indptr: np.ndarray, indices: np.ndarray, pad: int, factors: int,
                   block_elements: int, min_width: int = 8, max_rows: int = 64,
                   static_limit: int = 1 << 24) -> tuple[tuple[jax.Array, jax.Array], ...]:
    """Rows of a CSR structure grouped by list length into fixed-shape padded blocks.

    Each bucket holds the rows whose length ``n`` has width ``max(min_width, 2^ceil(log2 n))`` as
    ``(rows [n_blocks, R], lists [n_blocks, R, width])``,
    ``R = block_elements // (width * factors)`` (1..``max_rows``). Padding rows have id
    ``len(indptr) - 1`` (out of range), padding entries ``pad`` (the number of columns). Every row,
    also an empty one, appears once. Every width up to the number of columns has a bucket (at
    least one block, maybe all padding), so that splits of one size class share compiled code;
    each bucket has room for every row (shapes from the sizes alone) while that takes at most
    ``static_limit`` list entries in all (64 MB: ML-100K fits, ML-1M does not), else a
    power-of-two number of blocks (padding blocks are skipped by the consumers).
    """
    n_rows = len(indptr) - 1
    lengths = np.diff(indptr)
    widths = np.maximum(min_width, 1 << np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64))
    ladder = [min_width << e for e in range(max(1, -(-pad // min_width)).bit_length() + 1)
              if (min_width << e) < 2 * max(pad, min_width)]
    static = n_rows * sum(ladder) <= static_limit
    out = []
    for width in ladder:
        ids = np.flatnonzero(widths == width).astype(np.int32)
        per = int(max(1, min(max_rows, block_elements // (int(width) * factors))))
        needed = max(1, -(-len(ids) // per))
        room = max(1, -(-n_rows // per))  # blocks for every row
        n_blocks = room if static else min(1 << (needed - 1).bit_length(), room)
        rows = np.full(n_blocks * per, n_rows, np.int32)
        rows[:len(ids)] = ids
        lists = np.full((n_blocks * per, int(width)), pad, np.int32)
        lens = lengths[ids]
        col = np.arange(int(width))
        take = col[None, :] < lens[:, None]
        lists[:len(ids)][take] = indices[(indptr[ids][:, None] + col[None, :])[take]]
        out.append((jnp.asarray(rows.reshape(n_blocks, per)),
                    jnp.asarray(lists.reshape(n_blocks, per, int(width)))))
    return tuple(out)


def _als_half(other: jax.Array, buckets: tuple, n_rows: int, alpha: jax.Array,
              reg: jax.Array) -> jax.Array:
    """Closed-form factors of every row given the ``other`` side's factors.

    The per-row systems are assembled block by block (gathers and batched products only) and then
    solved in one batched Cholesky call for all rows: a single LAPACK call at a time (jaxlib's
    batched LAPACK kernels can deadlock a 2-thread CPU pool when two of them run concurrently).
    """
    f = other.shape[1]
    padded = jnp.concatenate([other, jnp.zeros((1, f), other.dtype)])  # row for padding entries
    shared = (jnp.matmul(other.T, other, precision=exact_precision())
              + reg * jnp.eye(f, dtype=other.dtype))
    a_all = jnp.broadcast_to(shared, (n_rows, f, f)) + 0.0  # materialised: updated in place
    b_all = jnp.zeros((n_rows, f), other.dtype)
    for rows, lists in buckets:  # a handful of length buckets, unrolled at trace time
        def assemble(items: jax.Array) -> tuple[jax.Array, jax.Array]:
            y = padded[items]  # [R, W, f]
            return (alpha * jnp.einsum("rwf,rwg->rfg", y, y, precision=exact_precision()),
                    (1.0 + alpha) * y.sum(axis=1))

        def add(carry: tuple[jax.Array, jax.Array], x: tuple[jax.Array, jax.Array]
                ) -> tuple[jax.Array, jax.Array]:
            r, items = x
            a, b = assemble(items)
            return carry[0].at[r].add(a, mode="drop"), carry[1].at[r].set(b, mode="drop")

        def block(carry: tuple[jax.Array, jax.Array], x: tuple[jax.Array, jax.Array]
                  ) -> tuple[tuple[jax.Array, jax.Array], None]:
            # a block's padding rows come last: it is all padding iff its first row is
            return jax.lax.cond(x[0][0] < n_rows, add, lambda c, _: c, carry, x), None

        (a_all, b_all), _ = jax.lax.scan(block, (a_all, b_all), (rows, lists))
    chol = jnp.linalg.cholesky(a_all)
    return jax.scipy.linalg.cho_solve((chol, True), b_all[..., None])[..., 0]


def _als_loss(users: jax.Array, items: jax.Array, buckets: tuple, alpha: jax.Array,
              reg: jax.Array) -> jax.Array:
    """``sum_ui c_ui (p_ui - s_ui)^2 + reg (|X|^2 + |Y|^2)`` without the dense matrix."""
    f = items.shape[1]
    padded = jnp.concatenate([items, jnp.zeros((1, f), items.dtype)])
    all_pairs = jnp.sum(jnp.matmul(users.T, users, precision=exact_precision())
                        * jnp.matmul(items.T, items, precision=exact_precision()))
    observed = jnp.float32(0.0)
    n_users = users.shape[0]
    for rows, lists in buckets:
        def part(block: tuple[jax.Array, jax.Array]) -> jax.Array:
            r, its = block
            x = jnp.where((r < n_users)[:, None], users[jnp.minimum(r, n_users - 1)], 0.0)
            s = jnp.einsum("rwf,rf->rw", padded[its], x, precision=exact_precision())
            real = its < items.shape[0]
            return jnp.sum(jnp.where(real, (1.0 + alpha) * (1.0 - s) ** 2 - s * s, 0.0))

        def block(x: tuple[jax.Array, jax.Array]) -> jax.Array:
            return jax.lax.cond(x[0][0] < n_users, part, lambda _: jnp.float32(0.0), x)

        observed = observed + jax.lax.map(block, (rows, lists)).sum()
    return observed + all_pairs + reg * (jnp.sum(users * users) + jnp.sum(items * items))


@jax.jit
def _als_epoch(users: jax.Array, items: jax.Array, user_buckets: tuple, item_buckets: tuple,
               alpha: jax.Array, reg: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    users = _als_half(items, user_buckets, users.shape[0], alpha, reg)
    items = _als_half(users, item_buckets, items.shape[0], alpha, reg)
    return users, items, _als_loss(users, items, user_buckets, alpha, reg)


@dataclass(frozen=True)
class FactorFitted(DataclassState):
    """Scores ``user_emb[u] @ item_emb.T``."""

    user_emb: jax.Array
    item_emb: jax.Array
    fit_info: dict[str, int | float] = field(default_factory=dict)
    losses: tuple[float, ...] = ()

    def score(self, batch: UserBatch) -> jax.Array:
        return _factor_scores(self.user_emb, self.item_emb, batch.users)


def ials_buckets(train: Interactions, cfg: IALSConfig) -> tuple[tuple, tuple]:
    """Length buckets of the users' item lists and the items' user lists."""
    m = train.csr
    t = m.tocsc()
    users = length_buckets(m.indptr.astype(np.int64), m.indices.astype(np.int32), train.n_items,
                           cfg.factors, cfg.block_elements)
    items = length_buckets(t.indptr.astype(np.int64), t.indices.astype(np.int32), train.n_users,
                           cfg.factors, cfg.block_elements)
    return users, items


@dataclass(frozen=True)
class IALSModel:
    cfg: IALSConfig

    restore = restores(FactorFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> FactorFitted:
        cfg = self.cfg
        user_buckets, item_buckets = ials_buckets(train, cfg)
        items = cfg.init_std * jax.random.normal(key, (train.n_items, cfg.factors), jnp.float32)
        users = jnp.zeros((train.n_users, cfg.factors), jnp.float32)
        alpha, reg = jnp.float32(cfg.alpha), jnp.float32(cfg.reg)
        losses, epoch_s = [], []
        for _ in range(cfg.epochs):  # one compiled epoch, called once per epoch
            t0 = time.perf_counter()
            users, items, loss = _als_epoch(users, items, user_buckets, item_buckets, alpha, reg)
            losses.append(float(loss))
            epoch_s.append(time.perf_counter() - t0)
        info = {"epochs_run": cfg.epochs, "epoch_s": statistics.median(epoch_s[1:] or epoch_s)}
        return FactorFitted(users, items, info, tuple(losses))


SPECS: list[ModelSpec] = [
    ModelSpec("ease", "cf-item", frozenset({"ranking"}),
              lambda cfg, ctx: EASEModel(cfg), EASEConfig,
              "EASE (Steck 2019): closed-form L2-regularised item-item linear model with a zero "
              "diagonal; family cf-item because it scores like an item-item neighbourhood model"),
    ModelSpec("ease-lowrank", "cf-item", frozenset({"ranking"}),
              lambda cfg, ctx: LowRankEASEModel(cfg), LowRankEASEConfig,
              "EASE with the Gram matrix replaced by its rank-r approximation (randomized SVD "
              "of the training matrix): for item counts where EASE's n_items^2 inverse does not "
              "fit, e.g. ML-20M; weights kept factored"),
    ModelSpec("ials", "latent-factor", frozenset({"ranking"}),
              lambda cfg, ctx: IALSModel(cfg), IALSConfig,
              "iALS / WRMF (Hu et al. 2008): implicit-feedback matrix factorisation by weighted "
              "alternating least squares, exact batched Cholesky solves per length bucket"),
]
