"""The built-in metrics: top-K ranking, rating error and binary classification.

Every function is vectorised numpy over all evaluated users at once (no Python loop over users) and
returns float64. Definitions follow the evaluation protocol in DESIGN.md; each spec's
``description`` states the exact formula so a leaderboard reader can check it.

Ranking conventions (see :class:`recbench.api.RankingContext`):

- ``hits[:, :k]`` are the top-k; ``n_relevant >= 1`` for every evaluated user.
- Positions at or beyond ``n_candidates[u]`` (a user with fewer unseen items than ``k``) hold no
  recommendation: coverage ignores them, and precision still divides by ``k`` (as trec_eval does).
- ``relevant_ranks`` lists, per user, the 0-based rank of each relevant *candidate*; relevant items
  that were masked (seen in training) are not candidates and do not take part in AUC.

Point metrics (rating, binary) are global means over all test pairs, as Surprise and scikit-learn
compute them, not per-user means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recbench.api import (
    ConfigError,
    DataError,
    MetricSpec,
    ModelError,
    PointContext,
    RankingContext,
    hookimpl,
)

# Probabilities are clipped before the logarithm so one confident mistake costs a finite amount.
LOG_LOSS_EPS = 1e-7
ACCURACY_THRESHOLD = 0.5


# ---------------------------------------------------------------- validation


def _top(ctx: RankingContext, k: int | None, metric: str) -> np.ndarray:
    """The top-k hit matrix as float64 ``[U, k]``, after checking ``k`` and ``n_relevant``."""
    k_max = ctx.hits.shape[1]
    if k is None or not 1 <= k <= k_max:
        raise ConfigError(
            f"metric {metric!r}: k={k!r} is outside 1..{k_max} (the evaluator's k_max); "
            "list every cutoff you report in the protocol's k values."
        )
    _check_relevant(ctx, metric)
    return np.asarray(ctx.hits[:, :k], dtype=np.float64)


def _check_relevant(ctx: RankingContext, metric: str) -> None:
    # Recall, NDCG and MAP divide by n_relevant: a zero would turn into NaN silently.
    if ctx.n_relevant.size and ctx.n_relevant.min() < 1:
        raise DataError(
            f"metric {metric!r}: a user with no relevant test items reached the metric; "
            "the evaluator must exclude (and count) such users."
        )


def _point(ctx: PointContext, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Target and prediction as float64 ``[N]``, after checking for NaN and empty input."""
    target = np.asarray(ctx.target, dtype=np.float64)
    prediction = np.asarray(ctx.prediction, dtype=np.float64)
    if target.shape != prediction.shape or target.ndim != 1:
        raise ModelError(
            f"metric {metric!r}: prediction shape {prediction.shape} does not match target shape "
            f"{target.shape}; predict() must return one value per test pair."
        )
    if target.size == 0:
        raise DataError(f"metric {metric!r}: no test pairs to evaluate; check the split.")
    if not np.isfinite(prediction).all():
        raise ModelError(
            f"metric {metric!r}: the model's predictions contain NaN or infinite values "
            f"({int((~np.isfinite(prediction)).sum())} of {prediction.size}); check training "
            "for divergence (learning rate, regularisation)."
        )
    if not np.isfinite(target).all():
        raise DataError(f"metric {metric!r}: the test targets contain NaN or infinite values.")
    return target, prediction


def _binary(ctx: PointContext, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities, checked to be 0/1 and within [0, 1]."""
    label, prob = _point(ctx, metric)
    if not np.isin(label, (0.0, 1.0)).all():
        raise DataError(
            f"metric {metric!r}: binary targets must be 0 or 1, got values such as "
            f"{np.unique(label[~np.isin(label, (0.0, 1.0))])[:3].tolist()}; "
            "binarise ratings with the implicit-threshold preprocessing step."
        )
    if prob.min() < 0.0 or prob.max() > 1.0:
        raise ModelError(
            f"metric {metric!r}: binary predictions must be probabilities in [0, 1], got range "
            f"[{prob.min():g}, {prob.max():g}]; apply a sigmoid to logits in predict()."
        )
    return label, prob


# ---------------------------------------------------------------- ranking


def _discounts(k: int) -> np.ndarray:
    """1 / log2(rank + 2) for 0-based ranks 0..k-1."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


def _ideal_hits(ctx: RankingContext, k: int) -> np.ndarray:
    """min(k, n_relevant): the most hits a perfect top-k can hold."""
    return np.minimum(k, ctx.n_relevant).astype(np.float64)


def precision(ctx: RankingContext, k: int | None) -> np.ndarray:
    return _top(ctx, k, "precision").sum(axis=1) / k


def recall(ctx: RankingContext, k: int | None) -> np.ndarray:
    return _top(ctx, k, "recall").sum(axis=1) / ctx.n_relevant


def recall_capped(ctx: RankingContext, k: int | None) -> np.ndarray:
    return _top(ctx, k, "recall_capped").sum(axis=1) / _ideal_hits(ctx, k)


def ndcg(ctx: RankingContext, k: int | None) -> np.ndarray:
    hits = _top(ctx, k, "ndcg")
    disc = _discounts(k)
    # IDCG for m ideal hits is the sum of the first m discounts; m >= 1 so the index is valid.
    idcg = np.cumsum(disc)[np.minimum(k, ctx.n_relevant) - 1]
    return hits @ disc / idcg


def average_precision(ctx: RankingContext, k: int | None) -> np.ndarray:
    hits = _top(ctx, k, "map")
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    return (hits * precision_at).sum(axis=1) / _ideal_hits(ctx, k)


def reciprocal_rank(ctx: RankingContext, k: int | None) -> np.ndarray:
    hits = _top(ctx, k, "mrr")
    first = hits.argmax(axis=1)  # index of the first hit; 0 also when there is none
    return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate(ctx: RankingContext, k: int | None) -> np.ndarray:
    return _top(ctx, k, "hit").any(axis=1).astype(np.float64)


def auc(ctx: RankingContext, k: int | None = None) -> np.ndarray:
    if ctx.relevant_ranks is None:
        raise DataError(
            "metric 'auc': the ranking context has no relevant_ranks; the evaluator must fill them "
            "for metrics that declare needs_ranks=True."
        )
    _check_relevant(ctx, "auc")
    ranks = np.asarray(ctx.relevant_ranks, dtype=np.int64)
    valid = ranks >= 0
    n_pos = valid.sum(axis=1).astype(np.float64)
    n_neg = np.asarray(ctx.n_candidates, dtype=np.float64) - n_pos
    # The relevant item with the j-th best rank r has j relevant and r - j non-relevant items above
    # it; summed over a user's relevant items, the j's add up to n_pos (n_pos - 1) / 2 whatever the
    # order, so no sort is needed.
    neg_above = np.where(valid, ranks, 0).sum(axis=1) - n_pos * (n_pos - 1.0) / 2.0
    pairs = n_pos * n_neg
    # No negatives: nothing can be ranked wrongly, so 1.0. No relevant candidate (all masked): 0.0,
    # as recall and NDCG score such a user.
    value = 1.0 - neg_above / np.where(pairs > 0, pairs, 1.0)
    return np.where(n_pos == 0, 0.0, np.where(n_neg <= 0, 1.0, value))


def coverage(ctx: RankingContext, k: int | None) -> float:
    _top(ctx, k, "coverage")  # validates k
    items = np.asarray(ctx.topk[:, :k])
    # Positions past a user's candidates are filler (masked items), not recommendations.
    shown = (np.arange(k) < np.asarray(ctx.n_candidates)[:, None]) & (items >= 0)
    return float(np.unique(items[shown]).size / ctx.n_items) if ctx.n_items else 0.0


# ---------------------------------------------------------------- rating


def mse(ctx: PointContext, k: int | None = None) -> float:
    target, prediction = _point(ctx, "mse")
    return float(np.mean((prediction - target) ** 2))


def rmse(ctx: PointContext, k: int | None = None) -> float:
    target, prediction = _point(ctx, "rmse")
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def mae(ctx: PointContext, k: int | None = None) -> float:
    target, prediction = _point(ctx, "mae")
    return float(np.mean(np.abs(prediction - target)))


# ---------------------------------------------------------------- binary


def accuracy(ctx: PointContext, k: int | None = None) -> float:
    label, prob = _binary(ctx, "accuracy")
    return float(np.mean((prob >= ACCURACY_THRESHOLD) == (label == 1.0)))


def roc_auc(ctx: PointContext, k: int | None = None) -> float:
    label, prob = _binary(ctx, "roc_auc")
    positive = label == 1.0
    n_pos = int(positive.sum())
    n_neg = label.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(
            f"metric 'roc_auc': the test labels hold only one class ({n_pos} positive, {n_neg} "
            "negative), so ROC AUC is undefined; use a split with both classes in test."
        )
    # Mann-Whitney U from average ranks: tied scores count half, as in sklearn's roc_auc_score.
    from scipy.stats import rankdata  # here: importing scipy.stats costs ~0.5 s at start-up

    ranks = rankdata(prob)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(ctx: PointContext, k: int | None = None) -> float:
    label, prob = _binary(ctx, "log_loss")
    p = np.clip(prob, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(label * np.log(p) + (1.0 - label) * np.log1p(-p)))


# ---------------------------------------------------------------- registration


Compute = Callable[[Any, "int | None"], "np.ndarray | float"]


def _ranking(name: str, compute: Compute, description: str, **kw: Any) -> MetricSpec:
    return MetricSpec(name=name, task="ranking", higher_is_better=True, compute=compute,
                      description=description, **kw)


def _pointwise(name: str, task: str, compute: Compute, higher: bool,
               description: str) -> MetricSpec:
    return MetricSpec(name=name, task=task, higher_is_better=higher, compute=compute,
                      uses_k=False, per_user=False, description=description)


METRICS: list[MetricSpec] = [
    _ranking("precision", precision, "Precision@k: hits in the top k / k (k even if the user has "
             "fewer than k candidates); per-user mean."),
    _ranking("recall", recall, "Recall@k: hits in the top k / |test_u| (plain denominator); "
             "per-user mean."),
    _ranking("recall_capped", recall_capped, "Capped recall@k: hits in the top k / min(k, "
             "|test_u|); per-user mean."),
    _ranking("ndcg", ndcg, "NDCG@k: binary gains, DCG = sum over top-k hits of 1/log2(rank+2) "
             "(0-based rank), IDCG over min(k, |test_u|) ideal hits; per-user mean."),
    _ranking("map", average_precision, "MAP@k: AP@k = sum over hit ranks r<=k of precision@r / "
             "min(k, |test_u|) (RecBole/LensKit denominator, not |test_u|); per-user mean."),
    _ranking("mrr", reciprocal_rank, "MRR@k: 1 / (1-based rank of the first hit in the top k), "
             "0 if none; per-user mean."),
    _ranking("hit", hit_rate, "HitRate@k: 1 if any test item is in the top k, else 0; "
             "per-user mean."),
    _ranking("auc", auc, "AUC: fraction of (test item, non-test candidate) pairs with the test "
             "item ranked above, over unseen candidates, full ranking; 1.0 for a user with no "
             "non-test candidate; per-user mean.", uses_k=False, needs_ranks=True),
    _ranking("coverage", coverage, "Item coverage@k: distinct items in any user's top k / "
             "n_items (one value, not a per-user mean).", per_user=False),
    _pointwise("mse", "rating", mse, False, "MSE: mean over all test pairs of (prediction - "
               "rating)^2."),
    _pointwise("rmse", "rating", rmse, False, "RMSE: sqrt of the mean over all test pairs of "
               "(prediction - rating)^2 (global, as Surprise)."),
    _pointwise("mae", "rating", mae, False, "MAE: mean over all test pairs of |prediction - "
               "rating|."),
    _pointwise("accuracy", "binary", accuracy, True, "Accuracy: fraction of test pairs where "
               "(probability >= 0.5) equals the 0/1 label."),
    _pointwise("roc_auc", "binary", roc_auc, True, "ROC AUC over all test pairs: P(score of a "
               "positive > score of a negative), ties counted half."),
    _pointwise("log_loss", "binary", log_loss, False, "Log loss: mean over all test pairs of "
               "-(y log p + (1-y) log(1-p)), p clipped to [1e-7, 1-1e-7]."),
]


@hookimpl
def register_metrics() -> list[MetricSpec]:
    return list(METRICS)

# The registered NDCG, for built-in models that early-stop on it.
NDCG: MetricSpec = next(m for m in METRICS if m.name == "ndcg")
