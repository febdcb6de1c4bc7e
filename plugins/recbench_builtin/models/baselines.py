"""Built-in baseline models: ``random`` and ``most-popular``.

Their scoring functions are jitted once per batch shape.

For the binary task both predict calibrated probabilities, so their log loss is no worse than the
constant 0.5 predictor's (ln 2) and accuracy at 0.5 is meaningful:

- ``random`` predicts the training positive rate for every pair (rating >= the protocol's
  threshold; 0.5 without ratings, where the protocol draws one negative per positive); its ranking
  scores stay uniform random;
- ``most-popular`` maps an item's training count through a logistic regression,
  P(positive) = sigmoid(a + b log(1 + count)), fitted on the training pairs: labelled by the
  threshold when there are ratings, else training pairs as positives and one sampled non-interacted
  item per pair as negatives (the evaluation protocol's own construction).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import DataclassState, Interactions, ModelSpec, UserBatch, restores


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
class RandomFitted(DataclassState):
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
        NormalPredictor); for the binary task (std 0) the training positive rate."""
        return _random_points(self.key, users, items, self.mean, self.std, self.lo, self.hi)


@dataclass(frozen=True)
class RandomModel:
    task: str
    binary_threshold: float = 4.0

    restore = restores(RandomFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> RandomFitted:
        if self.task == "rating" and train.rating is not None and len(train):
            r = train.rating
            return RandomFitted(key, train.n_items, float(r.mean()), float(r.std()),
                                float(r.min()), float(r.max()))
        rate = _positive_rate(train, self.binary_threshold)
        return RandomFitted(key, train.n_items, rate, 0.0, 0.0, 1.0)


def _positive_rate(train: Interactions, threshold: float) -> float:
    if train.rating is None or not len(train):
        return 0.5  # without ratings the protocol pairs every positive with one negative
    return float(np.mean(train.rating >= threshold))


# ------------------------------------------------------------------ most popular


@dataclass(frozen=True)
class MostPopularFitted(DataclassState):
    popularity: jax.Array  # float32 [n_items], training interaction counts
    probability: jax.Array  # float32 [n_items], calibrated P(positive) per item (binary task)

    def score(self, batch: UserBatch) -> jax.Array:
        return jnp.broadcast_to(self.popularity, (batch.users.shape[0], self.popularity.shape[0]))

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Calibrated probability of a positive: the item's count through the fitted logistic."""
        return self.probability[items]


@dataclass(frozen=True)
class MostPopularModel:
    task: str = "ranking"
    binary_threshold: float = 4.0

    restore = restores(MostPopularFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> MostPopularFitted:
        counts = train.item_counts
        x = np.log1p(counts.astype(np.float64))
        if self.task != "binary" or not len(train):
            prob = np.full(train.n_items, _positive_rate(train, self.binary_threshold))
        else:
            feature, label = _binary_training_pairs(train, x, self.binary_threshold, key)
            a, b = fit_logistic(feature, label)
            prob = _sigmoid(a + b * x)
        return MostPopularFitted(jnp.asarray(counts, jnp.float32), jnp.asarray(prob, jnp.float32))


def _binary_training_pairs(train: Interactions, x: np.ndarray, threshold: float, key: jax.Array
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(log-count feature, label) per training pair, built like the evaluation's binary pairs."""
    if train.rating is not None:
        return x[train.item], (train.rating >= threshold).astype(np.float64)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    neg = rng.integers(0, train.n_items, len(train))
    csr = train.csr
    for _ in range(20):  # resample items the user has; a few left over barely move two parameters
        clash = np.asarray(csr[train.user, neg]).ravel() > 0
        if not clash.any():
            break
        neg[clash] = rng.integers(0, train.n_items, int(clash.sum()))
    feature = np.concatenate([x[train.item], x[neg]])
    return feature, np.concatenate([np.ones(len(train)), np.zeros(len(train))])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50
                 ) -> tuple[float, float]:
    """(a, b) of P(y=1) = sigmoid(a + b x), by Newton's method on the L2-penalised log loss
    (as strong as scikit-learn's default C=1 on b; a tiny one on a keeps a one-class training set
    finite). Two parameters: a dozen Newton steps, no optimiser library to import."""
    design = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    penalty = np.array([1e-3, l2])
    for _ in range(steps):
        p = _sigmoid(design @ w)
        grad = design.T @ (p - y) + penalty * w
        hess = design.T @ (design * (p * (1.0 - p))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))  # no overflow for large |z|


@dataclass(frozen=True)
class NoOptions:
    """These baselines have no options."""


SPECS: list[ModelSpec] = [
    ModelSpec("random", "baseline", frozenset({"ranking", "rating", "binary"}),
              lambda cfg, ctx: RandomModel(ctx.task, ctx.binary_threshold), NoOptions,
              "uniform random scores; ratings from N(mean, std) of training ratings; binary: the "
              "training positive rate for every pair",
              cold_items=True),  # random scores need no interactions: the cold-start floor
    ModelSpec("most-popular", "baseline", frozenset({"ranking", "binary"}),
              lambda cfg, ctx: MostPopularModel(ctx.task, ctx.binary_threshold), NoOptions,
              "items ranked by training interaction count, the same list for every user; binary: "
              "the count through a logistic regression fitted on the training pairs"),
]
