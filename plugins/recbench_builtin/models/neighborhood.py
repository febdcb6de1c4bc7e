"""Neighbourhood models: ``item-knn`` and ``user-knn``, for top-K ranking and rating prediction.

Everything is dense matrix products, ``lax.top_k`` and scatters on the device under ``jit``; no
Python loop over users or items.

**Ranking** (as Dacrema et al. 2019's ItemKNNCF / UserKNNCF). ``X`` is the binary training matrix,
optionally re-weighted (``feature_weighting``: ``tfidf`` or ``bm25``, Dacrema's formulas, applied to
items x users for item-kNN and users x items for user-kNN). For two vectors ``a`` (the neighbour)
and ``b`` (the target) with ``dot = a.b`` and squared norms ``|a|^2``, ``|b|^2``:

- ``cosine``:     ``dot / (|a| |b| + shrink)``
- ``asymmetric``: ``dot / (|a|^(2 alpha) |b|^(2 (1 - alpha)) + shrink)`` (alpha = 0.5: cosine)
- ``jaccard``:    ``dot / (|a|^2 + |b|^2 - dot + shrink)`` (Tanimoto; |a|^2 = count when binary)

A zero denominator gives similarity 0. An entity is never its own neighbour.

- ``item-knn``: the item-item similarity comes from the Gram matrix ``X^T X`` (accumulated over
  blocks of users, see :func:`.linear.gram`); each target item ``j`` keeps its ``k`` most similar
  items (``lax.top_k``) in a dense ``[n_items, n_items]`` weight matrix ``W`` (zeros elsewhere).
  ``score(u, j) = sum_{i in history(u)} W[i, j]``: one product ``multi_hot(history) @ W`` per batch.
- ``user-knn``: a batch's users are compared with every training user at score time, from the
  batch's history: ``S = x_batch @ X^T`` (a ``[B, n_users]`` block, so the users x users matrix is
  never formed), normalised, the user's own column masked, ``lax.top_k`` keeps ``k`` neighbours,
  their weights are scattered into a ``[B, n_users]`` block and ``score = W_batch @ X``. ``X`` (the
  re-weighted training matrix) lives on the device as a dense ``[n_users, n_items]`` array.

**Rating** (``task = "rating"``: Koren's kNN-baseline, as Surprise's ``KNNBaseline``). Baselines
``b_ui = mu + b_u + b_i`` are fitted by ``baseline_epochs`` alternating steps
``b_i = sum(r - mu - b_u) / (reg_item + n_i)``, ``b_u = sum(r - mu - b_i) / (reg_user + n_u)``.
The prediction for (u, i) (user-based; item-based swaps the roles) is
``b_ui + sum_v sim(u, v) (r_vi - b_vi) / sum_v sim(u, v)`` over the ``k`` users most similar to u
among those who rated i, counting only neighbours with a positive similarity (Surprise's rule; with
fewer than ``min_k`` of them, or none, the prediction is ``b_ui``), clipped to the training rating
range. Similarities for this task:

- ``cosine`` is the cosine of the baseline residuals ``r - b`` over co-rated entries (Surprise's
  ``pearson_baseline``), shrunk by ``(n - 1) / (n - 1 + shrink)`` with ``n`` the number of co-rated
  entries (Koren's shrinkage; Surprise's default ``shrink`` is 100);
- ``asymmetric`` and ``jaccard`` are computed from the binary rated/not-rated pattern, exactly as in
  the ranking task.

The full similarity matrix between the entities (users or items) is kept dense on the device.
``feature_weighting`` applies to the ranking task only (a rating model with it is a config error).
A rating model's ``score`` returns the predicted rating of every item, computed in item chunks.

Defined scores outside the training data (never NaN): ranking: a user with an empty history has
all-zero similarities and scores 0 for every item (the evaluator then orders by item index); an item
without training interactions has no similarity to anything and scores 0. Rating: an unknown user
has ``b_u = 0`` and no neighbours, an unknown item ``b_i = 0``: the prediction is the baseline
(``mu + b_i``, ``mu + b_u`` or ``mu``), clipped.

Memory (dense float32, one device, nothing sharded): item-kNN keeps ``[n_items, n_items]`` (55 MB
at ML-1M's 3.7k items); user-kNN the ``[n_users, n_items]`` training matrix (90 MB at ML-1M); the
rating task dense residual and rated matrices plus the entity x entity similarity (user-based: 146
MB at ML-1M, ~20 GB at ML-10M, where the item-based model is the practical choice).

``k`` larger than the number of other users/items is capped at it. Compile once per shape: the
per-interaction arrays are padded to :func:`recbench.shapes.bucket_size` (padding ids out of range,
dropped by the scatters and segment sums), so a refit on another seed or fold of the same size class
compiles nothing; compile and fit time are measured by the harness around ``fit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import (
    ConfigError,
    DataError,
    DataclassState,
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    bucket_size,
    check,
)

from .linear import exact_precision, gram, multi_hot

BM25_K1, BM25_B = 1.2, 0.75  # Dacrema's defaults


@dataclass(frozen=True)
class KNNConfig:
    """k-nearest-neighbour CF.

    ``k``: neighbours kept per item (item-kNN) or per user (user-kNN); ``similarity``: ``cosine``,
    ``asymmetric`` or ``jaccard`` (see the module docs; in the rating task ``cosine`` is the
    baseline-residual cosine, Surprise's ``pearson_baseline``); ``shrink``: shrinkage term (>= 0);
    ``alpha``: exponent of the asymmetric cosine (0.5 = cosine); ``feature_weighting``: ``none``,
    ``tfidf`` or ``bm25`` (ranking task only). Rating task only: ``baseline_epochs``, ``reg_user``,
    ``reg_item`` (Surprise's ALS baseline options) and ``min_k`` (fewer positive neighbours: the
    prediction is the baseline).
    """

    k: int = 100
    similarity: Literal["cosine", "asymmetric", "jaccard"] = "cosine"
    shrink: float = 10.0
    alpha: float = 0.5
    feature_weighting: Literal["none", "tfidf", "bm25"] = "none"
    baseline_epochs: int = 10
    reg_user: float = 15.0
    reg_item: float = 10.0
    min_k: int = 1

    def __post_init__(self) -> None:
        check(self.k >= 1, f"k must be >= 1 (valid range: [1, inf)), got {self.k}")
        check(self.similarity in ("cosine", "asymmetric", "jaccard"),
              f"similarity must be one of 'cosine', 'asymmetric', 'jaccard', got "
              f"{self.similarity!r}")
        check(math.isfinite(self.shrink) and self.shrink >= 0,
              f"shrink must be >= 0 (valid range: [0, inf)), got {self.shrink}")
        check(math.isfinite(self.alpha) and 0 <= self.alpha <= 1,
              f"alpha must lie in [0, 1] (valid range: [0, 1]), got {self.alpha}")
        check(self.feature_weighting in ("none", "tfidf", "bm25"),
              f"feature_weighting must be one of 'none', 'tfidf', 'bm25', got "
              f"{self.feature_weighting!r}")
        check(self.baseline_epochs >= 0,
              f"baseline_epochs must be >= 0 (valid range: [0, inf)), got {self.baseline_epochs}")
        check(math.isfinite(self.reg_user) and self.reg_user >= 0,
              f"reg_user must be >= 0 (valid range: [0, inf)), got {self.reg_user}")
        check(math.isfinite(self.reg_item) and self.reg_item >= 0,
              f"reg_item must be >= 0 (valid range: [0, inf)), got {self.reg_item}")
        check(self.min_k >= 1, f"min_k must be >= 1 (valid range: [1, inf)), got {self.min_k}")


# ---------------------------------------------------------------- similarity


def similarity(dot: jax.Array, sq_target: jax.Array, sq_neighbour: jax.Array, *, kind: str,
               shrink: jax.Array, alpha: jax.Array) -> jax.Array:
    """``[T, N]`` similarities of targets (rows) to neighbours (columns) from their dot products
    ``dot [T, N]`` and squared norms ``sq_target [T]``, ``sq_neighbour [N]``."""
    t, n = sq_target[:, None], sq_neighbour[None, :]
    if kind == "cosine":
        den = jnp.sqrt(t) * jnp.sqrt(n) + shrink
    elif kind == "asymmetric":
        den = n ** alpha * t ** (1.0 - alpha) + shrink
    elif kind == "jaccard":
        den = t + n - dot + shrink
    else:  # pragma: no cover - rejected by the config
        raise ValueError(kind)
    ok = den > 0
    return jnp.where(ok, dot / jnp.where(ok, den, 1.0), 0.0)


def _idf(n_docs: int, term_counts: np.ndarray) -> np.ndarray:
    """Dacrema's idf ``log(N / (1 + df))``, floored at 0 so weights stay non-negative."""
    return np.maximum(np.log(n_docs / (1.0 + term_counts)), 0.0).astype(np.float32)


def _bm25_doc(doc_lengths: np.ndarray) -> np.ndarray:
    """BM25 weight of a binary entry: ``(K1 + 1) / (K1 * length_norm + 1)``."""
    mean = max(float(doc_lengths.mean()), 1e-12)
    norm = (1.0 - BM25_B) + BM25_B * doc_lengths / mean
    return ((BM25_K1 + 1.0) / (BM25_K1 * norm + 1.0)).astype(np.float32)


def _mask_topk(sim: jax.Array, exclude: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Top ``k`` columns per row after masking ``exclude`` (bool, same shape); masked picks: 0."""
    vals, idx = jax.lax.top_k(jnp.where(exclude, -jnp.inf, sim), k)
    return jnp.where(jnp.isfinite(vals), vals, 0.0), idx


# ---------------------------------------------------------------- ranking: item-kNN


@partial(jax.jit, static_argnames=("kind", "k"))
def _item_knn_weights(g: jax.Array, row_factor: jax.Array, shrink: jax.Array, alpha: jax.Array,
                      *, kind: str, k: int) -> jax.Array:
    n = g.shape[0]
    sq = jnp.diagonal(g)
    # rows: target items j, columns: candidate neighbours i (g is symmetric)
    sim = similarity(g, sq, sq, kind=kind, shrink=shrink, alpha=alpha)
    vals, idx = _mask_topk(sim, jnp.eye(n, dtype=bool), k)
    targets = jnp.broadcast_to(jnp.arange(n)[:, None], idx.shape)
    w = jnp.zeros((n, n), jnp.float32).at[idx, targets].set(vals)  # w[i, j]: i votes for j
    return w * row_factor[:, None]


@dataclass(frozen=True)
class ItemKNNFitted(DataclassState):
    """Scores ``multi_hot(history) @ weights``."""

    weights: jax.Array  # float32 [n_items, n_items], k non-zeros per column

    def score(self, batch: UserBatch) -> jax.Array:
        return _item_scores(self.weights, batch.history)


@jax.jit
def _item_scores(weights: jax.Array, history: jax.Array) -> jax.Array:
    return multi_hot(history, weights.shape[0]) @ weights


def _item_knn_fit(cfg: KNNConfig, train: Interactions) -> ItemKNNFitted:
    # Dacrema applies the weighting to items x users: idf per user, BM25 length per item.
    user_w = item_w = None
    if cfg.feature_weighting != "none":
        user_w = _idf(train.n_items, train.user_counts)
        if cfg.feature_weighting == "bm25":
            item_w = _bm25_doc(train.item_counts.astype(np.float64))
    k = max(1, min(cfg.k, train.n_items - 1))
    g = gram(train, user_w, item_w)
    # scoring with the re-weighted rows, up to a positive factor per user (idf_u)
    row_factor = jnp.asarray(item_w if item_w is not None else np.ones(train.n_items, np.float32))
    return ItemKNNFitted(jax.block_until_ready(_item_knn_weights(
        g, row_factor, jnp.float32(cfg.shrink), jnp.float32(cfg.alpha), kind=cfg.similarity, k=k)))


# ---------------------------------------------------------------- ranking: user-kNN


@partial(jax.jit, static_argnames=("kind", "k", "bm25"))
def _user_scores(x: jax.Array, sq: jax.Array, item_w: jax.Array, mean_len: jax.Array,
                 users: jax.Array, history: jax.Array, lengths: jax.Array, shrink: jax.Array,
                 alpha: jax.Array, *, kind: str, k: int, bm25: bool) -> jax.Array:
    n_users, n_items = x.shape
    xb = multi_hot(history, n_items) * item_w[None, :]
    if bm25:
        norm = (1.0 - BM25_B) + BM25_B * lengths.astype(jnp.float32) / mean_len
        xb = xb * ((BM25_K1 + 1.0) / (BM25_K1 * norm + 1.0))[:, None]
    dot = jnp.matmul(xb, x.T, precision=exact_precision())  # [B, n_users]
    sim = similarity(dot, jnp.sum(xb * xb, axis=1), sq, kind=kind, shrink=shrink, alpha=alpha)
    own = jnp.arange(n_users)[None, :] == users[:, None]
    vals, idx = _mask_topk(sim, own, k)
    rows = jnp.broadcast_to(jnp.arange(users.shape[0])[:, None], idx.shape)
    w = jnp.zeros((users.shape[0], n_users), jnp.float32).at[rows, idx].set(vals)
    return w @ x


@dataclass(frozen=True)
class UserKNNFitted(DataclassState):
    """Scores from the batch's ``k`` nearest training users (found at score time)."""

    matrix: jax.Array  # float32 [n_users, n_items], re-weighted training matrix
    sq_norms: jax.Array  # float32 [n_users]
    item_weight: jax.Array  # float32 [n_items]
    mean_length: jax.Array  # float32 [], BM25 only
    shrink: jax.Array
    alpha: jax.Array
    kind: str
    k: int
    bm25: bool

    def score(self, batch: UserBatch) -> jax.Array:
        return _user_scores(self.matrix, self.sq_norms, self.item_weight, self.mean_length,
                            batch.users, batch.history, batch.lengths, self.shrink, self.alpha,
                            kind=self.kind, k=self.k, bm25=self.bm25)


@partial(jax.jit, static_argnames=("n_users", "n_items"))
def _dense(users: jax.Array, items: jax.Array, values: jax.Array, *, n_users: int,
           n_items: int) -> jax.Array:
    return jnp.zeros((n_users, n_items), jnp.float32).at[users, items].set(values, mode="drop")


def _padded_pairs(users: np.ndarray, items: np.ndarray, values: np.ndarray, n_users: int
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Interaction arrays padded to a bucket size; padding has user id ``n_users`` (dropped)."""
    pad = (0, bucket_size(len(users)) - len(users))
    return (jnp.asarray(np.pad(users.astype(np.int32), pad, constant_values=n_users)),
            jnp.asarray(np.pad(items.astype(np.int32), pad)),
            jnp.asarray(np.pad(values.astype(np.float32), pad)))


def _user_knn_fit(cfg: KNNConfig, train: Interactions) -> UserKNNFitted:
    m = train.csr
    users = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(m.indptr))
    item_w = np.ones(train.n_items, np.float32)
    user_w = np.ones(train.n_users, np.float32)
    lengths = train.csr.getnnz(axis=1).astype(np.float64)
    if cfg.feature_weighting != "none":  # Dacrema: users x items, idf per item
        item_w = _idf(train.n_users, m.getnnz(axis=0))
        if cfg.feature_weighting == "bm25":
            user_w = _bm25_doc(lengths)
    vals = user_w[users] * item_w[m.indices]
    x = _dense(*_padded_pairs(users, m.indices, vals, train.n_users), n_users=train.n_users,
               n_items=train.n_items)
    sq = jax.block_until_ready(jnp.sum(x * x, axis=1))
    return UserKNNFitted(
        x, sq, jnp.asarray(item_w), jnp.float32(max(float(lengths.mean()), 1e-12)),
        jnp.float32(cfg.shrink), jnp.float32(cfg.alpha), cfg.similarity,
        max(1, min(cfg.k, train.n_users - 1)), cfg.feature_weighting == "bm25")


# ---------------------------------------------------------------- rating: kNN-baseline


@partial(jax.jit, static_argnames=("n_users", "n_items", "epochs"))
def baselines(users: jax.Array, items: jax.Array, ratings: jax.Array, reg_user: jax.Array,
              reg_item: jax.Array, *, n_users: int, n_items: int, epochs: int
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(mu, b_u, b_i)`` by Surprise's alternating least squares on the biases.

    Entries with a user id ``>= n_users`` are padding: they take no part (dropped by the segment
    sums, left out of the mean)."""
    ones = (users < n_users).astype(jnp.float32)
    mu = jnp.sum(ratings * ones) / jnp.maximum(jnp.sum(ones), 1.0)
    n_u = jax.ops.segment_sum(ones, users, n_users)
    n_i = jax.ops.segment_sum(ones, items, n_items)

    def step(_: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        bu, bi = carry
        bi = jax.ops.segment_sum((ratings - mu - bu[users]) * ones, items, n_items) / (
            reg_item + n_i)
        bu = jax.ops.segment_sum(ratings - mu - bi[items], users, n_users) / (reg_user + n_u)
        return bu, bi

    bu0, bi0 = jnp.zeros(n_users, jnp.float32), jnp.zeros(n_items, jnp.float32)
    bu, bi = jax.lax.fori_loop(0, epochs, step, (bu0, bi0))
    # a row without ratings has 0 / reg: exactly 0 unless the regulariser is 0
    return mu, jnp.where(n_u > 0, bu, 0.0), jnp.where(n_i > 0, bi, 0.0)


@partial(jax.jit, static_argnames=("kind",))
def _rating_similarity(resid: jax.Array, rated: jax.Array, shrink: jax.Array, alpha: jax.Array,
                       *, kind: str) -> jax.Array:
    """``[E, E]`` similarities between the rows (entities) of the residual matrix; diagonal 0."""
    mm = lambda a, b: jnp.matmul(a, b.T, precision=exact_precision())  # noqa: E731
    if kind == "cosine":  # pearson-baseline over co-rated entries
        prods = mm(resid, resid)
        sq = resid * resid
        sq_row, sq_col = mm(sq, rated), mm(rated, sq)
        common = mm(rated, rated)
        den = jnp.sqrt(sq_row * sq_col)
        ok = (den > 0) & (common > 0)
        sim = jnp.where(ok, prods / jnp.where(ok, den, 1.0), 0.0)
        sim = sim * jnp.where(common > 0, (common - 1.0) / (common - 1.0 + shrink + 1e-12), 0.0)
    else:
        sq = jnp.sum(rated, axis=1)
        sim = similarity(mm(rated, rated), sq, sq, kind=kind, shrink=shrink, alpha=alpha)
    return jnp.where(jnp.eye(sim.shape[0], dtype=bool), 0.0, sim)


def _knn_predict(state: dict[str, jax.Array], users: jax.Array, items: jax.Array, *, k: int,
                 min_k: int, user_based: bool) -> jax.Array:
    """kNN-baseline predictions for pairs ``[N]`` (see the module docs)."""
    mu, bu, bi = state["mu"], state["bu"], state["bi"]
    resid, rated_t, sim = state["resid"], state["rated_t"], state["sim"]
    ent, other = (users, items) if user_based else (items, users)
    s = sim[ent]  # [N, E]
    has = rated_t[other] > 0  # [N, E]: which entities rated the pair's other side
    vals, idx = _mask_topk(s, ~has, k)
    chosen = jnp.take_along_axis(has, idx, axis=1)
    r = resid[idx, other[:, None]]  # [N, k]
    pos = chosen & (vals > 0)
    sum_sim = jnp.sum(jnp.where(pos, vals, 0.0), axis=1)
    sum_r = jnp.sum(jnp.where(pos, vals * r, 0.0), axis=1)
    enough = (jnp.sum(pos, axis=1) >= min_k) & (sum_sim > 0)
    delta = jnp.where(enough, sum_r / jnp.where(enough, sum_sim, 1.0), 0.0)
    est = mu + bu[users] + bi[items] + delta
    return jnp.clip(est, state["lo"], state["hi"])


@partial(jax.jit, static_argnames=("k", "min_k", "user_based"))
def _predict_pairs(state: dict[str, jax.Array], users: jax.Array, items: jax.Array, *, k: int,
                   min_k: int, user_based: bool) -> jax.Array:
    return _knn_predict(state, users, items, k=k, min_k=min_k, user_based=user_based)


@partial(jax.jit, static_argnames=("k", "min_k", "user_based", "chunk"))
def _predict_all(state: dict[str, jax.Array], users: jax.Array, *, k: int, min_k: int,
                 user_based: bool, chunk: int) -> jax.Array:
    n_items = state["bi"].shape[0]
    n_chunks = -(-n_items // chunk)
    starts = jnp.arange(n_chunks) * chunk

    def part(start: jax.Array) -> jax.Array:
        its = jnp.minimum(start + jnp.arange(chunk), n_items - 1)  # [C]
        u = jnp.repeat(users, chunk)
        i = jnp.tile(its, users.shape[0])
        return _knn_predict(state, u, i, k=k, min_k=min_k,
                            user_based=user_based).reshape(users.shape[0], chunk)

    out = jax.lax.map(part, starts)  # [n_chunks, B, C]
    return jnp.transpose(out, (1, 0, 2)).reshape(users.shape[0], n_chunks * chunk)[:, :n_items]


@dataclass(frozen=True)
class KNNBaselineFitted(DataclassState):
    """kNN-baseline rating predictor; ``score`` gives the predicted rating of every item."""

    tables: dict[str, jax.Array]
    k: int
    min_k: int
    user_based: bool

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return _predict_pairs(self.tables, jnp.asarray(users, jnp.int32),
                              jnp.asarray(items, jnp.int32), k=self.k, min_k=self.min_k,
                              user_based=self.user_based)

    def score(self, batch: UserBatch) -> jax.Array:
        n_items = self.tables["bi"].shape[0]
        per_item = batch.users.shape[0] * self.tables["sim"].shape[0]
        chunk = max(1, min(n_items, 256, (1 << 22) // max(1, per_item)))  # <= 4M entries a step
        return _predict_all(self.tables, batch.users, k=self.k, min_k=self.min_k,
                            user_based=self.user_based, chunk=chunk)


def _knn_baseline_fit(cfg: KNNConfig, train: Interactions, user_based: bool) -> KNNBaselineFitted:
    if train.rating is None:
        raise DataError("task 'rating': the training interactions have no ratings; the "
                        "kNN-baseline model needs them (use the ranking task for implicit data)")
    if len(train) == 0:
        raise DataError("task 'rating': the training set is empty")
    u, i, r = _padded_pairs(train.user, train.item, train.rating, train.n_users)
    state = _knn_baseline_state(u, i, r, jnp.float32(cfg.reg_user), jnp.float32(cfg.reg_item),
                                jnp.float32(cfg.shrink), jnp.float32(cfg.alpha),
                                n_users=train.n_users, n_items=train.n_items,
                                epochs=cfg.baseline_epochs, kind=cfg.similarity,
                                user_based=user_based)
    state |= {"lo": jnp.float32(train.rating.min()), "hi": jnp.float32(train.rating.max())}
    n_entities = train.n_users if user_based else train.n_items
    return KNNBaselineFitted(jax.block_until_ready(state), max(1, min(cfg.k, n_entities - 1)),
                             cfg.min_k, user_based)


@partial(jax.jit, static_argnames=("n_users", "n_items", "epochs", "kind", "user_based"))
def _knn_baseline_state(u: jax.Array, i: jax.Array, r: jax.Array, reg_user: jax.Array,
                        reg_item: jax.Array, shrink: jax.Array, alpha: jax.Array, *, n_users: int,
                        n_items: int, epochs: int, kind: str, user_based: bool
                        ) -> dict[str, jax.Array]:
    """Baselines, residual and rated matrices and the entity similarities: one program."""
    mu, bu, bi = baselines(u, i, r, reg_user, reg_item, n_users=n_users, n_items=n_items,
                           epochs=epochs)
    resid = _dense(u, i, r - (mu + bu[u] + bi[i]), n_users=n_users, n_items=n_items)
    rated = _dense(u, i, jnp.ones_like(r), n_users=n_users, n_items=n_items)
    if not user_based:
        resid, rated = resid.T, rated.T
    sim = _rating_similarity(resid, rated, shrink, alpha, kind=kind)
    return {"mu": mu, "bu": bu, "bi": bi, "resid": resid, "rated_t": rated.T, "sim": sim}


# ---------------------------------------------------------------- models and specs


@dataclass(frozen=True)
class KNNModel:
    cfg: KNNConfig
    user_based: bool
    task: str

    def restore(self, state: dict) -> Any:
        """The fitted model saved as ``state`` (see ``recbench run --save-models``)."""
        if self.task == "rating":
            return KNNBaselineFitted.from_state(state)
        return (UserKNNFitted if self.user_based else ItemKNNFitted).from_state(state)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> Any:
        if self.task == "rating":
            return _knn_baseline_fit(self.cfg, train, self.user_based)
        return (_user_knn_fit if self.user_based else _item_knn_fit)(self.cfg, train)


def _factory(user_based: bool):
    def make(cfg: KNNConfig, ctx: ModelContext) -> KNNModel:
        if ctx.task == "rating" and cfg.feature_weighting != "none":
            raise ConfigError(f"feature_weighting = {cfg.feature_weighting!r} applies to the "
                              "ranking task only; set it to 'none' for the rating task")
        return KNNModel(cfg, user_based, ctx.task)
    return make


SPECS: list[ModelSpec] = [
    ModelSpec("item-knn", "cf-item", frozenset({"ranking", "rating"}), _factory(False), KNNConfig,
              "item-based k-nearest neighbours (cosine / asymmetric cosine / Jaccard with "
              "shrinkage, top-k pruning); rating task: kNN-baseline (Koren; Surprise's "
              "KNNBaseline, item-based)"),
    ModelSpec("user-knn", "cf-user", frozenset({"ranking", "rating"}), _factory(True), KNNConfig,
              "user-based k-nearest neighbours (cosine / asymmetric cosine / Jaccard with "
              "shrinkage, top-k pruning); rating task: kNN-baseline (Koren; Surprise's "
              "KNNBaseline, user-based)"),
]
