"""Report statistics, each checked against a worked example from its documentation or paper."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from recbench.errors import RecbenchError
from recbench.random import derive_rng
from recbench.report.stats import (Unpairable, average_ranks, correct, critical_difference,
                                   friedman_nemenyi, pair_by_user, paired_test,
                                   per_user_means, percentile_bootstrap, user_bootstrap_ci)

# Student's sleep data (Cushny & Peebles 1905), the paired t-test's classic example: R's
# `t.test(extra ~ group, data = sleep, paired = TRUE)` gives t = -4.0621, df = 9, p = 0.002833.
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def test_paired_t_test_and_effect_size_on_the_sleep_data():
    r = paired_test(SLEEP_1, SLEEP_2)
    assert r.n == 10 and r.mean_diff == pytest.approx(-1.58)
    assert r.t == pytest.approx(-4.0621, abs=1e-4)
    assert r.p_ttest == pytest.approx(0.002833, abs=1e-6)
    # Cohen's d_z = mean difference / sd of the differences = -1.58 / 1.2300
    assert r.d_z == pytest.approx(-1.58 / 1.229995, rel=1e-5)


def test_wilcoxon_on_darwins_plants_from_scipys_documentation():
    # scipy.stats.wilcoxon's example: Fisher's height differences of cross- and self-fertilised
    # plants; statistic 24, two-sided exact p = 0.041259765625.
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], float)
    r = paired_test(d, np.zeros_like(d))
    assert r.w == 24.0 and r.p_wilcoxon == pytest.approx(0.041259765625)


def test_identical_values_are_no_evidence_of_a_difference():
    r = paired_test(np.ones(5), np.ones(5))
    assert r.p_ttest == 1.0 and r.p_wilcoxon == 1.0 and r.d_z == 0.0


def test_holm_and_benjamini_hochberg_on_a_worked_example():
    # Holm (1979), the textbook example: p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05. Sorted, 0.005 <
    # 0.05/4 and 0.01 < 0.05/3 are rejected, 0.03 > 0.05/2 stops: H1 and H4 rejected; adjusted
    # p = (0.03, 0.06, 0.06, 0.02). BH: adjusted p_(i) = min_j>=i p_(j) m / j = (0.02, 0.04, 0.04, 0.02).
    p = [0.01, 0.04, 0.03, 0.005]
    reject, adjusted = correct(p, "holm")
    assert list(reject) == [True, False, False, True]
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    reject, adjusted = correct(p, "bh")
    assert reject.all()
    np.testing.assert_allclose(adjusted, [0.02, 0.04, 0.04, 0.02])
    with pytest.raises(RecbenchError, match="unknown correction"):
        correct(p, "bonferonni")


def test_critical_difference_matches_demsar_2006():
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..10 models; his example: k = 4, N = 14 data sets,
    # CD = 2.569 * sqrt(4 * 5 / (6 * 14)) = 1.25.
    q = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, expected in zip(range(2, 11), q):
        assert critical_difference(k, 1, 0.05) / np.sqrt(k * (k + 1) / 6) == pytest.approx(
            expected, abs=1e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)


def _friedman_by_demsar(ranks: np.ndarray, n: int) -> float:
    """Demšar (2006) eq. (3): chi2_F = 12 N / (k (k+1)) [sum_j R_j^2 - k (k+1)^2 / 4]."""
    k = len(ranks)
    return 12 * n / (k * (k + 1)) * (np.sum(ranks ** 2) - k * (k + 1) ** 2 / 4)


def test_friedman_and_nemenyi_follow_demsars_formulas():
    # Demšar's example: average ranks 3.143, 2.000, 2.893, 1.964 over N = 14 give chi2_F = 9.28.
    assert _friedman_by_demsar(np.array([3.143, 2.000, 2.893, 1.964]), 14) == pytest.approx(
        9.28, abs=0.01)
    # On scores without ties, scipy's Friedman statistic is that formula of the average ranks.
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.random((14, 4)) + np.array([0.0, 0.3, 0.1, 0.35]),
                          columns=["a", "b", "c", "d"])
    result = friedman_nemenyi(scores)
    ranks = average_ranks(scores)
    assert result.statistic == pytest.approx(_friedman_by_demsar(ranks.to_numpy(), 14))
    assert list(result.average_ranks.index) == list(ranks.index) and ranks.iloc[0] >= 1
    assert result.critical_difference == pytest.approx(critical_difference(4, 14))
    # Nemenyi's test and the critical difference agree: a pair is significant exactly when its
    # average ranks differ by more than CD.
    for x in scores.columns:
        for y in scores.columns:
            if x != y:
                apart = abs(ranks[x] - ranks[y]) > result.critical_difference
                assert (result.nemenyi.at[x, y] < 0.05) == apart, (x, y)
    # Lower-is-better scores rank the other way round.
    assert list(friedman_nemenyi(-scores, higher_is_better=False).average_ranks.index) == list(
        ranks.index)


def test_friedman_refuses_missing_scores_and_too_few_models():
    with pytest.raises(RecbenchError, match="every model needs a score"):
        friedman_nemenyi(pd.DataFrame({"a": [1.0, np.nan], "b": [1, 2], "c": [2, 3]}))
    with pytest.raises(RecbenchError, match="at least 3 models"):
        friedman_nemenyi(pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]}))


def test_replicates_give_one_observation_per_user():
    """Two seeds of one fixed split are the same numbers twice: the test must not see 2n users."""
    ids, a, b = np.arange(30), np.linspace(0, 1, 30), np.linspace(0, 1, 30) ** 2
    once = paired_test(*per_user_means([(ids, a, b)]))
    twice = paired_test(*per_user_means([(ids, a, b), (ids, a, b)]))
    assert once.n == twice.n == 30 and twice.p_ttest == pytest.approx(once.p_ttest)
    # Users evaluated under only some replicates count once too, with their own mean.
    x, y = per_user_means([(np.array([1, 2]), np.array([1.0, 3.0]), np.zeros(2)),
                           (np.array([2]), np.array([5.0]), np.ones(1))])
    np.testing.assert_array_equal(x, [1.0, 4.0])
    np.testing.assert_array_equal(y, [0.0, 0.5])


def test_pairing_is_by_user_id_and_checked():
    ids, a, b = pair_by_user(np.array([3, 1, 2]), np.array([0.3, 0.1, 0.2]),
                             np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(ids, [1, 2, 3])
    np.testing.assert_array_equal(a, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(b, [1.0, 2.0, 3.0])
    with pytest.raises(Unpairable, match="different users"):
        pair_by_user(np.array([1, 2]), np.zeros(2), np.array([1, 3]), np.zeros(2))
    with pytest.raises(Unpairable, match="without user ids"):
        pair_by_user(None, np.zeros(2), np.array([1, 2]), np.zeros(2))


def test_the_card_names_a_cold_candidate_set():
    from recbench.report.card import candidate_set

    assert candidate_set({"task": "ranking", "candidates": "cold"}, 100).startswith(
        "only the cold items")
    assert candidate_set({"task": "ranking", "candidates": "all"}, 100).startswith(
        "full ranking over all 100 items")


def test_a_failure_is_superseded_only_by_a_later_success_of_the_same_setup():
    from recbench.report.tables import current_failures

    ident = {"dataset": {"name": "d", "config": {}, "checksum": "c"}, "recbench": "0.1",
             "protocol": {"task": "ranking"}, "model": {"name": "m", "config": {"k": 1}}}
    failed = {"dataset": "d", "model": "m", "seed": 0, "status": "failed",
              "started": "2026-01-01T00:00:00Z", "identity": ident}
    later_ok = {**failed, "status": "ok", "started": "2026-01-02T00:00:00Z"}
    assert current_failures([failed, later_ok]) == []
    other_protocol = {**later_ok, "identity": {**ident, "protocol": {"task": "binary"}}}
    other_config = {**later_ok, "identity": {**ident, "model": {"name": "m", "config": {"k": 2}}}}
    assert current_failures([failed, other_protocol, other_config]) == [failed]


def test_user_bootstrap_of_one_replicate_is_scipys_bootstrap_of_the_values():
    from scipy import stats

    # scipy.stats.bootstrap's documented example: a sample of 100 from N(2, 4) (here fixed), the
    # percentile interval of its mean, with the same generator.
    values = derive_rng(7, "sample").normal(2.0, 4.0, size=100)
    ids = np.arange(100) * 3  # stored ids, sorted: position i is user 3i
    ours = user_bootstrap_ci([(ids, {"m": values, "twice": 2 * values})], ("worked example",),
                             n_resamples=2000)
    assert ours["twice"] == pytest.approx(tuple(2 * v for v in ours["m"]), rel=1e-12)
    ours = ours["m"]
    theirs = stats.bootstrap((values,), np.mean, n_resamples=2000, method="percentile",
                             confidence_level=0.95,
                             rng=derive_rng(0, "bootstrap", "worked example")).confidence_interval
    assert ours == pytest.approx((theirs.low, theirs.high), rel=1e-12)
    # ... and close to the normal approximation mean +- 1.96 s / sqrt(n)
    half = 1.96 * values.std(ddof=1) / 10
    assert ours == pytest.approx((values.mean() - half, values.mean() + half), abs=0.1 * half)
    assert np.isnan(user_bootstrap_ci([(ids[:1], {"m": values[:1]})], ("one user",))["m"]).all()


def test_percentile_bootstrap_is_scipys_draw_for_draw():
    """Batches that do not divide the resamples, a statistic of several rows, a NaN row: the
    same interval as scipy.stats.bootstrap from the same generator state."""
    from scipy import stats

    values = derive_rng(3, "values").normal(size=(3, 57))
    values[2] = np.nan

    def statistic(draw, axis=-1):  # (draws, 57) positions -> (3, draws)
        return values[:, draw].mean(axis=-1)

    for batch, n_resamples in [(7, 50), (64, 64), (1, 3)]:
        low, high = percentile_bootstrap(statistic, 57, n_resamples, batch, 0.9,
                                         derive_rng(0, "draw", str(batch)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns of the NaN row
            theirs = stats.bootstrap((np.arange(57),), statistic, vectorized=True, batch=batch,
                                     n_resamples=n_resamples, confidence_level=0.9,
                                     method="percentile", rng=derive_rng(0, "draw", str(batch)))
        np.testing.assert_allclose(low, theirs.confidence_interval.low, rtol=1e-14)
        np.testing.assert_allclose(high, theirs.confidence_interval.high, rtol=1e-14)
        assert np.isnan(low[2]) and np.isfinite(low[:2]).all()


def test_user_bootstrap_covers_the_known_mean_and_the_seed_bootstrap_does_not():
    """Per-user values = a user effect (mean 0.3) + per-seed noise, 5 seeds on 80 users (a few
    missing per seed): ~95% of the user-bootstrap intervals contain 0.3; the old percentile
    bootstrap over the 5 seed means misses the users' sampling error and covers far less."""
    from scipy import stats

    rng = derive_rng(0, "coverage")
    hits = old_hits = 0
    draws = 200
    for d in range(draws):
        effect = rng.normal(0.3, 0.2, size=80)
        replicates = []
        for _ in range(5):
            keep = np.sort(rng.permutation(80)[:75])
            replicates.append((keep, {"m": effect[keep] + rng.normal(0, 0.3, size=75)}))
        low, high = user_bootstrap_ci(replicates, ("coverage", str(d)), n_resamples=300)["m"]
        hits += low <= 0.3 <= high
        means = [v["m"].mean() for _, v in replicates]
        old = stats.bootstrap((means,), np.mean, n_resamples=300, method="percentile",
                              rng=rng).confidence_interval
        old_hits += old.low <= 0.3 <= old.high
    assert 0.91 <= hits / draws <= 0.98
    assert old_hits / draws < 0.8  # 0.62 here (0.95 above)
