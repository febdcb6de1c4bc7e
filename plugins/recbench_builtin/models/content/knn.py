"""``content-knn``: items as feature vectors, a user as the weighted mean of what they consumed,
ranked by cosine.

Item vectors come from :mod:`.features` (categories, robust-scaled numbers, TF-IDF text; rows
L2-normalised). A user's profile is the weighted mean of the vectors of their training items,
weight = rating (shifted so the lowest training rating weighs 1; 1 without ratings, or with
``rating_weighted = false``) x ``0.5 ** (k / recency_half_life)`` for the k-th most recent of the
user's items (``recency_half_life = 0``: no decay). Profiles are built once per fit on the host
(one sparse product, users x items times items x features); scoring is ``normalise(profile) @
items.T`` on the device, jitted, one block of users per call (the evaluator's batch). Item rows
are sparse (a few genres and title words among ~1,000 columns), so when their padded width is
under a quarter of the columns the product runs over the padded sparse rows (a gather and a
sum), not over a dense item matrix: at ML-1M size with 1,020 features (8.5 per item) that is
~40x fewer multiply-adds.

An item's score depends on its features only, so items without interactions (cold start) are
scored like any other; an item without features scores 0, a user without history 0 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from recbench.api import (
    DataclassState,
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    check,
    restores,
)

from .features import FeatureOptions, encode_items


@dataclass(frozen=True)
class ContentKNNConfig(FeatureOptions):
    rating_weighted: bool = field(default=True, metadata={
        "help": "weigh a consumed item by its rating in the profile"})
    centre: bool = field(default=True, metadata={
        "help": "subtract the mean profile over all training interactions (what the user "
                "likes more than everyone does)"})
    recency_half_life: float = field(default=0.0, metadata={
        "range": (0.0, None), "help": "interactions after which an item's weight halves (0: off)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.recency_half_life >= 0,
              f"recency_half_life must be >= 0, got {self.recency_half_life}")


def profile_weights(train: Interactions, rating_weighted: bool, half_life: float
                    ) -> sp.csr_matrix:
    """users x items weights of the profile mean: rating x recency, rows summing to 1."""
    w = np.ones(len(train), np.float64)
    if rating_weighted and train.rating is not None and len(train):
        w = train.rating - float(train.rating.min()) + 1.0
    if half_life > 0:
        order = train.order  # by user, then time
        ends = np.cumsum(train.user_counts)
        from_end = np.empty(len(train), np.float64)
        from_end[order] = ends[train.user[order]] - 1 - np.arange(len(train))
        w = w * 0.5 ** (from_end / half_life)
    m = sp.csr_matrix((w, (train.user, train.item)), shape=(train.n_users, train.n_items))
    total = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, total, out=np.zeros_like(total),
                                            where=total > 0)) @ m)


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@jax.jit
def _cosine(profiles: jax.Array, items: jax.Array, users: jax.Array) -> jax.Array:
    return profiles[users] @ items.T


@jax.jit
def _cosine_sparse(profiles: jax.Array, index: jax.Array, value: jax.Array,
                   users: jax.Array) -> jax.Array:
    """``profiles[users] @ items.T`` with the items as padded sparse rows (``index``, ``value``
    ``[n_items, w]``, padding value 0): ``B x n_items x w`` multiply-adds instead of
    ``B x n_items x n_features``."""
    p = profiles[users].T  # [n_features, B]: a gathered feature is one contiguous row

    def add_column(acc: jax.Array, column: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        idx, val = column  # the t-th stored entry of every item row: [n_items]
        return acc + jnp.take(p, idx, axis=0) * val[:, None], None

    # One [n_items, B] gather per stored position: never a [B, n_items, w] intermediate.
    scores, _ = jax.lax.scan(add_column, jnp.zeros((index.shape[0], p.shape[1]), p.dtype),
                             (index.T, value.T))
    return scores.T


def padded_rows(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``m`` as ``[n_rows, w]`` column indices and values, w = the longest row
    rounded up to a multiple of 8 (padding: column 0, value 0), at most the number of columns
    (3 attribute fields: 3 wide, not 8)."""
    lengths = np.diff(m.indptr)
    width = min(max(8, -(-int(lengths.max(initial=1)) // 8) * 8), max(m.shape[1], 1))
    row = np.repeat(np.arange(m.shape[0]), lengths)
    pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    index = np.zeros((m.shape[0], width), np.int32)
    value = np.zeros((m.shape[0], width), np.float32)
    index[row, pos], value[row, pos] = m.indices, m.data
    return index, value


@dataclass(frozen=True)
class ContentKNNFitted(DataclassState):
    profiles: jax.Array  # float32 [n_users, n_features], unit rows (zero without history)
    # The items' unit feature rows: dense [n_items, n_features], or, when rows are sparse enough
    # (padded width under a quarter of the features), padded sparse rows (index, value).
    items: jax.Array | tuple[jax.Array, jax.Array]
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        if isinstance(self.items, tuple):
            return _cosine_sparse(self.profiles, *self.items, batch.users)
        return _cosine(self.profiles, self.items, batch.users)


@dataclass(frozen=True)
class ContentKNN:
    config: ContentKNNConfig
    context: ModelContext

    restore = restores(ContentKNNFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> ContentKNNFitted:
        cfg = self.config
        encoded = encode_items(self.context, cfg, "content-knn")
        weights = profile_weights(train, cfg.rating_weighted, cfg.recency_half_life)
        profiles = np.asarray((weights @ encoded.matrix).todense(), np.float32)
        if cfg.centre and len(train):
            # What sets the user apart from everyone: the mean profile over all training rows.
            mean = np.asarray(encoded.matrix[train.item].mean(axis=0), np.float32)
            profiles = profiles - (train.user_counts > 0)[:, None] * mean  # no history: stays 0
        profiles = unit_rows(profiles)
        info = {"features": len(encoded.columns), "dropped_columns": len(encoded.dropped),
                "items_without_features": int(encoded.empty.sum())}
        index, value = padded_rows(encoded.matrix)
        items = ((jnp.asarray(index), jnp.asarray(value)) if 4 * index.shape[1] < profiles.shape[1]
                 else jnp.asarray(encoded.matrix.toarray(), jnp.float32))
        return ContentKNNFitted(jnp.asarray(profiles), items, info)


SPECS: list[ModelSpec] = [
    ModelSpec("content-knn", "content", frozenset({"ranking"}),
              lambda cfg, ctx: ContentKNN(cfg, ctx), ContentKNNConfig,
              "cosine of item feature vectors (genres, scaled attributes, TF-IDF text) with the "
              "user's rating/recency-weighted mean profile; scores cold items",
              requires=frozenset({"item_features"}), cold_items=True),
]
