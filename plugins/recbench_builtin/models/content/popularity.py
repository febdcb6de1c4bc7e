"""``category-popular``: popularity by category, the non-personalised reference point for items
without interactions (most-popular cannot rank them: they all have count 0).

Categories are :func:`.features.category_indicators`: each category or text-term column, and
each numeric attribute cut into quantile bands (a price band is a category). A category's
popularity is the mean training interaction count of the training items in it, shrunk towards
the mean over all training items with a prior of one item:
``p_c = (sum_{i in c} n_i + mean_n) / (items_c + 1)``. An item scores the mean ``p_c`` of its
categories (the overall mean when it has none); every user gets the same list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import DataclassState, Interactions, ModelContext, ModelSpec, UserBatch, restores

from .features import FeatureOptions, category_indicators, encode_items


@jax.jit
def _broadcast(item_scores: jax.Array, users: jax.Array) -> jax.Array:
    return jnp.broadcast_to(item_scores, (users.shape[0], item_scores.shape[0]))


@dataclass(frozen=True)
class CategoryPopularFitted(DataclassState):
    item_scores: jax.Array  # float32 [n_items]
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _broadcast(self.item_scores, batch.users)


def category_popularity(train: Interactions, categories) -> np.ndarray:
    """[n_items] float64: mean popularity of each item's categories (see the module docstring)."""
    counts = train.item_counts.astype(np.float64)
    seen = (counts > 0).astype(np.float64)
    mean = counts[counts > 0].mean() if (counts > 0).any() else 0.0
    per_category = (categories.T @ counts + mean) / (categories.T @ seen + 1.0)
    n_categories = np.asarray(categories.sum(axis=1)).ravel()
    total = categories @ per_category
    return np.where(n_categories > 0, total / np.maximum(n_categories, 1), mean)


@dataclass(frozen=True)
class CategoryPopular:
    config: FeatureOptions
    context: ModelContext

    restore = restores(CategoryPopularFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> CategoryPopularFitted:
        categories = category_indicators(encode_items(self.context, self.config,
                                                      "category-popular"))
        scores = category_popularity(train, categories)
        return CategoryPopularFitted(jnp.asarray(scores, jnp.float32),
                                     {"categories": categories.shape[1]})


SPECS: list[ModelSpec] = [
    ModelSpec("category-popular", "baseline", frozenset({"ranking"}),
              lambda cfg, ctx: CategoryPopular(cfg, ctx), FeatureOptions,
              "items ranked by the mean popularity of their categories, attribute bands and "
              "text terms; the same list for every user; scores cold items",
              requires=frozenset({"item_features"}), cold_items=True),
]
