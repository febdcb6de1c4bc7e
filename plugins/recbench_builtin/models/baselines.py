"""Built-in baseline models: ``random`` and ``most-popular``.

Their scoring functions are jitted once per batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from recbench import Interactions, ModelSpec, UserBatch


# ------------------------------------------------------------------ random


@jax.jit
def _random_scores(key: jax.Array, users: jax.Array, n_items_like: jax.Array) -> jax.Array:
    # One stream per user, so a user's scores do not depend on the batch it is in.
    per_user = jax.vmap(lambda u: jax.random.uniform(jax.random.fold_in(key, u),
                                                     n_items_like.shape))
    return per_user(users)


@jax.jit
def _random_points(key: jax.Array, users: jax.Array, items: jax.Array, mean: jax.Array,
                   std: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    keys = jax.vmap(lambda u, i: jax.random.fold_in(jax.random.fold_in(key, u), i))(users, items)
    z = jax.vmap(lambda k: jax.random.normal(k, ()))(keys)
    return jnp.clip(mean + std * z, lo, hi)


@dataclass(frozen=True)
class RandomFitted:
    key: jax.Array
    n_items: int
    mean: float
    std: float
    lo: float
    hi: float

    def score(self, batch: UserBatch) -> jax.Array:
        return _random_scores(self.key, batch.users, jnp.zeros(self.n_items))

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Rating drawn from N(mean, std) of training ratings, clipped to their range (Surprise's
        NormalPredictor); for the binary task a probability N(0.5, 0.29) clipped to [0, 1]."""
        return _random_points(self.key, users, items, self.mean, self.std, self.lo, self.hi)


@dataclass(frozen=True)
class RandomModel:
    task: str

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> RandomFitted:
        if self.task == "rating" and train.rating is not None and len(train):
            r = train.rating
            return RandomFitted(key, train.n_items, float(r.mean()), float(r.std()),
                                float(r.min()), float(r.max()))
        return RandomFitted(key, train.n_items, 0.5, 0.29, 0.0, 1.0)


# ------------------------------------------------------------------ most popular


@dataclass(frozen=True)
class MostPopularFitted:
    popularity: jax.Array  # float32 [n_items], training interaction counts

    def score(self, batch: UserBatch) -> jax.Array:
        return jnp.broadcast_to(self.popularity, (batch.users.shape[0], self.popularity.shape[0]))

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Probability of interaction: the item's count over the largest count."""
        return self.popularity[items] / jnp.maximum(self.popularity.max(), 1.0)


@dataclass(frozen=True)
class MostPopularModel:
    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> MostPopularFitted:
        return MostPopularFitted(jnp.asarray(train.item_counts, jnp.float32))


@dataclass(frozen=True)
class NoOptions:
    """These baselines have no options."""


SPECS: list[ModelSpec] = [
    ModelSpec("random", "baseline", frozenset({"ranking", "rating", "binary"}),
              lambda cfg, ctx: RandomModel(ctx.task), NoOptions,
              "uniform random scores; ratings from N(mean, std) of training ratings"),
    ModelSpec("most-popular", "baseline", frozenset({"ranking", "binary"}),
              lambda cfg, ctx: MostPopularModel(), NoOptions,
              "items ranked by training interaction count, the same list for every user"),
]
