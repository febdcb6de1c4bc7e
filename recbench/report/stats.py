"""Significance statistics for leaderboards, from well-kept libraries.

Intervals (``INTERVALS``): :func:`user_bootstrap_ci`, a percentile bootstrap of a row's mean
metric over users (:func:`percentile_bootstrap`: scipy.stats.bootstrap's draws), one resample of
the users shared by every seed's mean (the default); or :func:`runs_t_interval`, a Student t
interval over the row's runs (seeds x folds), which also counts the spread that other splits and
other initial values give.

Within one split: paired per-user tests between two models (:func:`paired_test`: scipy's paired
t-test and Wilcoxon signed-rank test, and Cohen's d_z as the effect size), on values paired by
user id (:func:`pair_by_user`: never by position), with a multiple-comparison correction across
all pairs of a table (:func:`correct`: statsmodels' ``multipletests``, Holm by default,
Benjamini-Hochberg as an option).

Across datasets: the Friedman test on the models' ranks per dataset, the Nemenyi post-hoc test
(scikit-posthocs) and the average ranks with the critical difference of Demšar (2006),
"Statistical comparisons of classifiers over multiple data sets", JMLR 7:1-30
(:func:`friedman_nemenyi`; the data a critical-difference diagram draws).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RecbenchError

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}  # our names -> statsmodels' method names
TESTS = ("ttest", "wilcoxon")
INTERVALS = ("users", "runs")


class Unpairable(RecbenchError):
    """Two trials' per-user values cannot be paired (no ids stored, or different users)."""


def per_user_means(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Paired (ids, a, b) of several replicates (seeds, folds) -> one (a, b) pair per user: the
    mean of the user's values over the replicates that evaluated them. A paired test counts each
    user once: a user's values under several seeds are not independent observations (under a
    fixed split, such as leave-last-out, they are the same numbers)."""
    ids = np.concatenate([p[0] for p in pairs])
    users, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    a = np.bincount(inverse, np.concatenate([p[1] for p in pairs]), len(users)) / counts
    b = np.bincount(inverse, np.concatenate([p[2] for p in pairs]), len(users)) / counts
    return a, b


def pair_by_user(ids_a: np.ndarray | None, a: np.ndarray, ids_b: np.ndarray | None,
                 b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted user ids with ``a`` and ``b`` in that order, checked to cover the same users.

    Raises :class:`Unpairable` when either has no stored ids (a record written before ids were
    stored) or the two were evaluated on different users: a paired test needs the same users."""
    if ids_a is None or ids_b is None:
        raise Unpairable("per-user values stored without user ids (a record from before ids were "
                         "stored): pairing cannot be checked; re-run the experiment to pair it")
    if len(ids_a) != len(a) or len(ids_b) != len(b):
        raise Unpairable("per-user values do not align with their user ids")
    oa, ob = np.argsort(ids_a, kind="stable"), np.argsort(ids_b, kind="stable")
    if len(ids_a) != len(ids_b) or not np.array_equal(ids_a[oa], ids_b[ob]):
        only_a = len(np.setdiff1d(ids_a, ids_b))
        only_b = len(np.setdiff1d(ids_b, ids_a))
        raise Unpairable(f"evaluated on different users ({only_a} users only in one, {only_b} "
                         f"only in the other)")
    return ids_a[oa], np.asarray(a, np.float64)[oa], np.asarray(b, np.float64)[ob]


# What a leaderboard's interval is: the protocol card says it next to the numbers.
BOOTSTRAP_RESAMPLES = 2000
USER_BOOTSTRAP = ("percentile bootstrap over users (scipy.stats.bootstrap's draws, {n} resamples): "
                  "users drawn with replacement, the same draw for every seed's per-user mean, "
                  "whose mean over seeds is the statistic; the spread over seeds is the ± std")
_CELLS_PER_BATCH = 4_000_000  # resamples x users held at once


def user_bootstrap_ci(replicates: list[tuple[np.ndarray, Mapping[str, np.ndarray]]],
                      seed_key: Any, confidence: float = 0.95,
                      n_resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of the mean over replicates (seeds, folds) of each
    replicate's mean over its users, for every metric at once (one draw of users serves them
    all); ``replicates``: (user ids, metric -> per-user values aligned with the ids) per replicate.

    The resampling unit is the user, the source of the sampling error a test set's mean has
    (seeds share users; 5 seeds are too few to bootstrap): a resample draws users with
    replacement from those any replicate evaluated, and every replicate's mean is taken over the
    same draw (a user a replicate did not evaluate counts in none of its means). With one
    replicate this is scipy's bootstrap of the per-user values. ``seed_key`` seeds the draw
    (``derive_rng``). NaN with fewer than 2 users."""
    metrics = sorted({m for _, values in replicates for m in values})
    if not metrics:
        return {}
    users = np.unique(np.concatenate([np.asarray(i) for i, _ in replicates]))
    n, r, k = len(users), len(replicates), len(metrics)
    if n < 2:
        return {m: (math.nan, math.nan) for m in metrics}
    table = np.full((n, r, k), np.nan)  # user x replicate x metric
    for j, (ids, values) in enumerate(replicates):
        rows = np.searchsorted(users, ids)
        for c, m in enumerate(metrics):
            if m in values:
                table[rows, j, c] = values[m]
    present = ~np.isnan(table)
    filled = np.where(present, table, 0.0).reshape(n, r * k)
    counted = present.reshape(n, r * k).astype(np.float64)

    def means_over_replicates(draw: np.ndarray, axis: int = -1) -> np.ndarray:
        draw = np.moveaxis(draw, axis, -1)
        flat = draw.reshape(-1, n)  # one draw of user positions per row
        # How often each user is drawn: each replicate's sums and counts are then two products.
        offsets = (np.arange(len(flat)) * n)[:, None]
        times = np.bincount((flat + offsets).ravel(), minlength=flat.size).reshape(flat.shape)
        times = times.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            # a replicate none of whose users a draw holds counts in no mean of that draw
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(((times @ filled) / (times @ counted)).reshape(-1, r, k), axis=1)
        return np.moveaxis(means.reshape(*draw.shape[:-1], k), -1, 0)  # metric first

    from ..random import derive_rng

    low, high = percentile_bootstrap(means_over_replicates, n, n_resamples,
                                     max(1, _CELLS_PER_BATCH // n), confidence,
                                     derive_rng(0, "bootstrap", *seed_key))
    return {m: (float(low[c]), float(high[c])) for c, m in enumerate(metrics)}


def percentile_bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int,
                         batch: int, confidence: float, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided percentile interval of ``statistic`` over ``n_resamples`` draws of ``n``
    positions with replacement: ``scipy.stats.bootstrap((np.arange(n),), statistic,
    vectorized=True, batch=batch, method="percentile")``, draw for draw (``rng.integers`` per
    batch, then the linear quantiles), which ``tests/test_report_stats.py`` checks. It is written
    out because importing scipy.stats takes ~1.2 s, a third of a small ``recbench run``'s process.
    ``statistic`` maps a (draws, n) array of positions to (..., draws)."""
    distribution = np.concatenate(
        [statistic(rng.integers(0, n, (min(batch, n_resamples - start), n)))
         for start in range(0, n_resamples, batch)], axis=-1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(distribution, [alpha, 1 - alpha], axis=-1)
    return np.atleast_1d(low), np.atleast_1d(high)


RUNS_T = ("Student t interval over each row's runs (seeds x folds; runs - 1 degrees of freedom) "
          "of their means: the spread over splits and initial values, users fixed per run")


def runs_t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student t interval of the mean of ``values`` (one mean per run: seed, fold); NaN with
    fewer than 2 finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan, math.nan
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])  # scipy wants a positive scale
    from scipy import stats  # here: scipy.stats takes ~0.7 s to import

    low, high = stats.t.interval(confidence, len(v) - 1, loc=v.mean(),
                                 scale=v.std(ddof=1) / math.sqrt(len(v)))
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    n: int  # pairs
    mean_diff: float  # mean of a - b
    t: float
    p_ttest: float
    w: float
    p_wilcoxon: float
    d_z: float  # Cohen's d_z: mean difference over the standard deviation of the differences


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedResult:
    """Two-sided paired t-test and Wilcoxon signed-rank test of ``a`` vs ``b`` (same users, same
    order), and Cohen's d_z. Identical values give p = 1 (no evidence of a difference)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a - b
    n = len(d)
    if n < 2 or not np.any(d):
        return PairedResult(n, float(d.mean()) if n else 0.0, 0.0, 1.0, 0.0, 1.0, 0.0)
    sd = d.std(ddof=1)
    from scipy import stats  # here: scipy.stats takes ~0.7 s to import

    t = stats.ttest_rel(a, b)
    # Zero differences are dropped (Wilcoxon's own rule); scipy picks the exact or normal method.
    w = stats.wilcoxon(a, b, zero_method="wilcox")
    d_z = float(d.mean() / sd) if sd > 0 else math.copysign(math.inf, d.mean())
    return PairedResult(n, float(d.mean()), float(t.statistic), float(t.pvalue),
                        float(w.statistic), float(w.pvalue), d_z)


def correct(pvalues: list[float] | np.ndarray, method: str = "holm", alpha: float = 0.05
            ) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p-values) across a family of tests: ``holm`` (Holm's step-down, controls
    the family-wise error) or ``bh`` (Benjamini-Hochberg, the false discovery rate)."""
    if method not in CORRECTIONS:
        raise RecbenchError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    # Imported here: statsmodels takes seconds to import, and most commands never correct.
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, np.float64)
    if len(p) == 0:
        return np.zeros(0, bool), p
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=CORRECTIONS[method])
    return reject, adjusted


@dataclass(frozen=True)
class RankComparison:
    """Friedman + Nemenyi over blocks (datasets) x models, and Demšar's critical difference."""

    statistic: float  # Friedman's chi-square (scipy, with its tie correction)
    pvalue: float
    average_ranks: pd.Series  # model -> average rank (1 = best), best first
    critical_difference: float  # Nemenyi CD at alpha: two models differ when their ranks do by more
    nemenyi: pd.DataFrame  # model x model p-values
    alpha: float
    n_blocks: int


def average_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Rank the models (columns) within each block (row), 1 = best, ties sharing the mean rank;
    averaged over the blocks."""
    ranks = scores.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean(axis=0).sort_values()


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference for ``k`` models over ``n`` blocks (Demšar 2006, eq. 5):
    q_alpha * sqrt(k (k + 1) / (6 n)), q_alpha the studentized range quantile over sqrt 2."""
    from scipy import stats  # here: scipy.stats takes ~0.7 s to import

    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def friedman_nemenyi(scores: pd.DataFrame, higher_is_better: bool = True, alpha: float = 0.05
                     ) -> RankComparison:
    """``scores``: one row per block (dataset), one column per model, no missing values."""
    if scores.isna().any().any():
        raise RecbenchError("friedman: every model needs a score on every dataset; drop the "
                            "models or datasets with missing values first")
    n, k = scores.shape
    if k < 3 or n < 2:
        raise RecbenchError(f"friedman: needs at least 3 models on at least 2 datasets, got {k} "
                            f"models on {n}")
    import scikit_posthocs  # seconds to import (it loads seaborn): only when asked for

    from scipy import stats  # here: scipy.stats takes ~0.7 s to import

    chi2, p = stats.friedmanchisquare(*(scores[c].to_numpy() for c in scores.columns))
    # scikit-posthocs ranks each block ascending; negate so that rank 1 is the best model.
    signed = scores if not higher_is_better else -scores
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(signed.to_numpy())
    nemenyi.index = nemenyi.columns = list(scores.columns)
    return RankComparison(float(chi2), float(p), average_ranks(scores, higher_is_better),
                          critical_difference(k, n, alpha), nemenyi, alpha, n)
