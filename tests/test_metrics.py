"""Property tests for the built-in metrics.

Every ranking metric is checked against a naive per-user reference written from the definitions
(loops over users and ranks, sharing no code with the vectorised plugin), against the independent
trec_eval implementation (pytrec_eval) and scikit-learn, and for range, perfect-ranking and
monotonicity properties. All randomness comes from Hypothesis draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from recbench.errors import ModelError
from recbench.specs import MetricSpec, PointContext, RankingContext
from recbench_builtin import metrics as M

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

RANKING = {s.name: s for s in M.METRICS if s.task == "ranking"}
RATING = {s.name: s for s in M.METRICS if s.task == "rating"}
BINARY = {s.name: s for s in M.METRICS if s.task == "binary"}
PER_USER_RANKING = [n for n, s in RANKING.items() if s.per_user]


# ---------------------------------------------------------------- generated data


@dataclass(frozen=True)
class Case:
    """A generated evaluation problem: scores, relevant and seen items for U users."""

    scores: np.ndarray    # [U, n_items], small integers so ties happen
    relevant: np.ndarray  # [U, n_items] bool, >= 1 per user, disjoint from seen
    seen: np.ndarray      # [U, n_items] bool, masked before ranking
    k_max: int

    @property
    def n_items(self) -> int:
        return self.scores.shape[1]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    k_max = draw(st.integers(1, n_items))
    scores = np.array([[draw(st.integers(0, 3)) for _ in range(n_items)]
                       for _ in range(n_users)], dtype=np.float64)
    # Per item: 0 = unjudged, 1 = relevant, 2 = seen in training. Seen items are often many so
    # that some users have fewer than k_max candidates.
    labels = np.array([[draw(st.sampled_from([0, 1, 2])) for _ in range(n_items)]
                       for _ in range(n_users)])
    for u in range(n_users):  # every evaluated user has at least one relevant item
        labels[u, draw(st.integers(0, n_items - 1))] = 1
    return Case(scores, labels == 1, labels == 2, k_max)


def ranked_order(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Every item per user, best first: seen items masked to -inf, ties by lower item index."""
    masked = np.where(seen, -np.inf, scores)
    index = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.lexsort((index, -masked), axis=-1)  # last key is primary: score descending


def context_from_order(order: np.ndarray, case: Case) -> RankingContext:
    """Build the RankingContext an evaluator would hand the metrics for this order."""
    rows = np.arange(order.shape[0])[:, None]
    topk = order[:, :case.k_max]
    rank_of = np.argsort(order, axis=1)  # position of each item in the order
    n_rel = case.relevant.sum(axis=1)
    ranks = np.full((order.shape[0], int(n_rel.max())), -1, dtype=np.int64)
    for u in range(order.shape[0]):
        # Relevant items are never seen here, so their position is also their candidate rank.
        r = np.sort(rank_of[u, case.relevant[u]])
        ranks[u, :r.size] = r
    return RankingContext(
        users=np.arange(order.shape[0]), topk=topk, hits=case.relevant[rows, topk],
        n_relevant=n_rel, n_candidates=case.n_items - case.seen.sum(axis=1),
        n_items=case.n_items, relevant_ranks=ranks,
    )


def build(case: Case) -> tuple[np.ndarray, RankingContext]:
    order = ranked_order(case.scores, case.seen)
    return order, context_from_order(order, case)


def candidates(order: np.ndarray, case: Case, u: int) -> list[int]:
    """User u's unseen items, best first."""
    return [int(i) for i in order[u] if not case.seen[u, i]]


def evaluate(name: str, ctx: RankingContext, k: int) -> np.ndarray | float:
    spec = RANKING[name]
    return spec.compute(ctx, k if spec.uses_k else None)


# ---------------------------------------------------------------- naive references


def naive(name: str, ranked: list[int], rel: set[int], k: int) -> float:
    """One user's metric from its ranked candidate list, straight from the definition."""
    top = ranked[:k]
    hit_ranks = [r for r, item in enumerate(top) if item in rel]  # 0-based
    if name == "precision":
        return len(hit_ranks) / k
    if name == "recall":
        return len(hit_ranks) / len(rel)
    if name == "recall_capped":
        return len(hit_ranks) / min(k, len(rel))
    if name == "ndcg":
        dcg = sum(1 / math.log2(r + 2) for r in hit_ranks)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        return dcg / idcg
    if name == "map":
        total = 0.0
        for n, r in enumerate(hit_ranks, start=1):
            total += n / (r + 1)  # precision at the n-th hit's position
        return total / min(k, len(rel))
    if name == "mrr":
        return 1 / (hit_ranks[0] + 1) if hit_ranks else 0.0
    if name == "hit":
        return 1.0 if hit_ranks else 0.0
    if name == "auc":
        pos = [r for r, item in enumerate(ranked) if item in rel]
        neg = [r for r, item in enumerate(ranked) if item not in rel]
        if not neg:
            return 1.0
        return sum(p < q for p in pos for q in neg) / (len(pos) * len(neg))
    raise AssertionError(f"no reference for {name}")


def naive_coverage(order: np.ndarray, case: Case, k: int) -> float:
    shown: set[int] = set()
    for u in range(order.shape[0]):
        shown.update(candidates(order, case, u)[:k])
    return len(shown) / case.n_items


# ---------------------------------------------------------------- registration


def test_register_metrics_returns_the_documented_metrics() -> None:
    specs = M.register_metrics()
    assert all(isinstance(s, MetricSpec) and s.description for s in specs)
    assert {(s.name, s.task) for s in specs} == {
        *((n, "ranking") for n in ["precision", "recall", "recall_capped", "ndcg", "map", "mrr",
                                   "hit", "auc", "coverage"]),
        ("mse", "rating"), ("rmse", "rating"), ("mae", "rating"),
        ("accuracy", "binary"), ("roc_auc", "binary"), ("log_loss", "binary"),
    }
    assert len({s.name for s in specs}) == len(specs)
    # auc needs the evaluator to fill relevant_ranks; without the flag it would fail at run time.
    assert [s.name for s in specs if s.needs_ranks] == ["auc"]


# ---------------------------------------------------------------- ranking: reference agreement


@SETTINGS
@given(cases())
def test_ranking_matches_naive_reference(case: Case) -> None:
    order, ctx = build(case)
    for k in range(1, case.k_max + 1):
        for name in PER_USER_RANKING:
            got = evaluate(name, ctx, k)
            assert isinstance(got, np.ndarray) and got.dtype == np.float64
            assert got.shape == (order.shape[0],)
            want = [naive(name, candidates(order, case, u), set(np.flatnonzero(case.relevant[u])),
                          k) for u in range(order.shape[0])]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=f"{name}@{k}")
        assert RANKING["coverage"].compute(ctx, k) == pytest.approx(
            naive_coverage(order, case, k), abs=1e-12)


def trec_inputs(order: np.ndarray, case: Case, k: int) -> tuple[dict, dict]:
    """qrels and a run holding only each user's top-k candidates, scored to keep our order."""
    qrels, run = {}, {}
    for u in range(order.shape[0]):
        qrels[f"u{u}"] = {f"i{i}": 1 for i in np.flatnonzero(case.relevant[u])}
        # Distinct scores so trec_eval's own tie-breaking never applies.
        run[f"u{u}"] = {f"i{i}": float(case.n_items - pos)
                        for pos, i in enumerate(candidates(order, case, u)[:k])}
    return qrels, run


@SETTINGS
@given(cases(), st.data())
def test_ranking_matches_pytrec_eval(case: Case, data: st.DataObject) -> None:
    order, ctx = build(case)
    k = data.draw(st.integers(1, case.k_max), label="k")
    qrels, run = trec_inputs(order, case, k)
    measures = {f"P.{k}", f"recall.{k}", f"ndcg_cut.{k}", "recip_rank", f"success.{k}",
                f"map_cut.{k}"}
    result = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # trec_eval's recall divides by |rel| (our plain recall), ndcg_cut takes IDCG over
    # min(k, |rel|) with gain 1, P_k divides by k, recip_rank covers the run (only top-k here).
    pairs = {"precision": f"P_{k}", "recall": f"recall_{k}", "ndcg": f"ndcg_cut_{k}",
             "mrr": "recip_rank", "hit": f"success_{k}"}
    for ours, theirs in pairs.items():
        want = [result[f"u{u}"][theirs] for u in range(order.shape[0])]
        np.testing.assert_allclose(evaluate(ours, ctx, k), want, rtol=0, atol=1e-6,
                                   err_msg=f"{ours} vs {theirs}")
    # map_cut divides AP by |rel| and ours by min(k, |rel|): they agree only where |rel| <= k.
    small = ctx.n_relevant <= k
    want_map = np.array([result[f"u{u}"][f"map_cut_{k}"] for u in range(order.shape[0])])
    np.testing.assert_allclose(evaluate("map", ctx, k)[small], want_map[small], rtol=0, atol=1e-6)


@SETTINGS
@given(cases())
def test_auc_matches_sklearn(case: Case) -> None:
    order, ctx = build(case)
    got = evaluate("auc", ctx, case.k_max)
    for u in range(order.shape[0]):
        ranked = candidates(order, case, u)
        label = case.relevant[u, ranked]
        if label.all():  # no negatives: undefined for sklearn, 1.0 by our documented rule
            assert got[u] == 1.0
            continue
        # Score = minus position reproduces the tie-broken order exactly.
        want = skm.roc_auc_score(label, -np.arange(len(ranked)))
        assert got[u] == pytest.approx(want, abs=1e-9)


# ---------------------------------------------------------------- ranking: properties


@SETTINGS
@given(cases())
def test_ranking_values_lie_in_unit_interval(case: Case) -> None:
    _, ctx = build(case)
    for k in range(1, case.k_max + 1):
        for name in RANKING:
            value = np.asarray(evaluate(name, ctx, k))
            assert np.all((value >= 0.0) & (value <= 1.0)), f"{name}@{k}: {value}"


@SETTINGS
@given(cases())
def test_perfect_ranking(case: Case) -> None:
    # Relevant items score above everything else, whatever their ties among themselves.
    perfect = Case(case.relevant.astype(np.float64), case.relevant, case.seen, case.k_max)
    _, ctx = build(perfect)
    for k in range(1, case.k_max + 1):
        expected_precision = np.minimum(k, ctx.n_relevant) / k
        np.testing.assert_allclose(evaluate("precision", ctx, k), expected_precision, atol=1e-12)
        for name in ["recall_capped", "ndcg", "map", "mrr", "hit", "auc"]:
            np.testing.assert_allclose(evaluate(name, ctx, k), 1.0, atol=1e-12, err_msg=name)


@SETTINGS
@given(cases(), st.data())
def test_moving_a_relevant_item_up_never_hurts(case: Case, data: st.DataObject) -> None:
    order, before = build(case)
    u = data.draw(st.integers(0, order.shape[0] - 1), label="user")
    n_cand = int(before.n_candidates[u])
    # Pick a relevant candidate and a better position; move it there (others shift down by one).
    positions = [p for p in range(n_cand) if case.relevant[u, order[u, p]]]
    src = data.draw(st.sampled_from(positions), label="from")
    dst = data.draw(st.integers(0, src), label="to")
    moved = order.copy()
    row = list(order[u])
    row.insert(dst, row.pop(src))
    moved[u] = row
    after = context_from_order(moved, case)
    for k in range(1, case.k_max + 1):
        for name in PER_USER_RANKING:  # ndcg, mrr, hit, recall and the rest are all monotone
            old, new = evaluate(name, before, k)[u], evaluate(name, after, k)[u]
            assert new >= old - 1e-12, f"{name}@{k}: {old} -> {new}"


# ---------------------------------------------------------------- rating and binary


finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


@st.composite
def rating_pairs(draw: st.DrawFn) -> PointContext:
    n = draw(st.integers(1, 40))
    target = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), dtype=np.float64)
    prediction = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    return PointContext(np.zeros(n, np.int64), np.arange(n), target, prediction)


@st.composite
def binary_pairs(draw: st.DrawFn) -> PointContext:
    n = draw(st.integers(2, 40))
    label = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    # Two distinct positions forced to 0 and 1: both classes present, so ROC AUC is defined.
    neg = draw(st.integers(0, n - 1))
    pos = draw(st.integers(0, n - 2))
    label[neg], label[pos + (pos >= neg)] = 0, 1
    # A coarse grid makes ties and exact 0.5 thresholds likely; extremes exercise clipping.
    prob = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0))
    prediction = np.array(draw(st.lists(prob, min_size=n, max_size=n)))
    return PointContext(np.zeros(n, np.int64), np.arange(n), np.array(label, np.float64),
                        prediction)


@SETTINGS
@given(rating_pairs())
def test_rating_metrics_match_sklearn(ctx: PointContext) -> None:
    mse = skm.mean_squared_error(ctx.target, ctx.prediction)
    assert RATING["mse"].compute(ctx, None) == pytest.approx(mse, rel=1e-12, abs=1e-12)
    assert RATING["rmse"].compute(ctx, None) == pytest.approx(math.sqrt(mse), rel=1e-12, abs=1e-12)
    assert RATING["mae"].compute(ctx, None) == pytest.approx(
        skm.mean_absolute_error(ctx.target, ctx.prediction), rel=1e-12, abs=1e-12)


@SETTINGS
@given(binary_pairs())
def test_binary_metrics_match_sklearn(ctx: PointContext) -> None:
    y, p = ctx.target, ctx.prediction
    assert BINARY["accuracy"].compute(ctx, None) == pytest.approx(
        skm.accuracy_score(y, p >= 0.5), abs=1e-12)
    assert BINARY["roc_auc"].compute(ctx, None) == pytest.approx(
        skm.roc_auc_score(y, p), abs=1e-12)
    # Clip first, with our documented bounds, so sklearn's own (tighter) clipping is a no-op.
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    assert BINARY["log_loss"].compute(ctx, None) == pytest.approx(
        skm.log_loss(y, clipped, labels=[0, 1]), rel=1e-9)


@SETTINGS
@given(st.one_of(rating_pairs(), binary_pairs()), st.data())
def test_nan_prediction_raises_model_error(ctx: PointContext, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, ctx.prediction.size - 1), label="nan at")
    prediction = ctx.prediction.copy()
    prediction[i] = np.nan
    bad = PointContext(ctx.users, ctx.items, ctx.target, prediction)
    for spec in [*RATING.values(), *BINARY.values()]:
        with pytest.raises(ModelError, match=spec.name):
            spec.compute(bad, None)


# ---------------------------------------------------------------- a metric plugin using popularity


def test_novelty_metric_plugin_sees_training_popularity() -> None:
    """A third-party metric (average popularity of the recommended items, ARP) gets the training
    item counts from the evaluator; validation interactions do not count."""
    import types

    import jax.numpy as jnp

    from recbench.api import Interactions, hookimpl
    from recbench.evaluate import evaluate_ranking
    from recbench.plugins import load_plugins
    from recbench.registry import Registry

    def arp(ctx: RankingContext, k: int | None) -> np.ndarray:
        return ctx.item_popularity[ctx.topk[:, :k]].mean(axis=1).astype(np.float64)

    plugin = types.ModuleType("novelty_plugin")
    plugin.register_metrics = hookimpl(lambda: [MetricSpec(
        "arp", "ranking", higher_is_better=False, compute=arp,
        description="mean training popularity of the top-k items")])
    registry = Registry.build(load_plugins(allow=set(), objects=(plugin,)))
    spec = registry.metric("arp")

    # 3 users x 5 items. Training counts per item [3, 2, 1, 0, 0]; validation adds item 2 twice.
    train = Interactions(np.array([0, 1, 2, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 2]), 3, 5)
    with_valid = Interactions(np.array([0, 1, 2, 0, 1, 2, 0, 1]),
                              np.array([0, 0, 0, 1, 1, 2, 2, 2]), 3, 5)
    test = Interactions(np.array([0, 1, 2]), np.array([3, 3, 3]), 3, 5)

    class Fixed:  # prefers lower item ids
        def score(self, batch):
            return jnp.broadcast_to(-jnp.arange(5, dtype=jnp.float32), (len(batch.users), 5))

    # Only training items are masked: the top 2 are [2, 3], [2, 3] and [1, 3].
    result = evaluate_ranking(Fixed(), train=with_valid, test=test, known=train,
                              metrics=[spec], ks=(2,), fit_on=train)
    np.testing.assert_allclose(result.per_user["arp@2"], [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(result.per_user["arp@2"],
                                  [arp_naive(u, train) for u in ([2, 3], [2, 3], [1, 3])])
    # Without fit_on the history part (here train + valid) is what the model was fit on.
    default = evaluate_ranking(Fixed(), train=with_valid, test=test, known=train,
                               metrics=[spec], ks=(2,))
    np.testing.assert_allclose(default.per_user["arp@2"], [1.5, 1.5, 1.0])


def arp_naive(items: list[int], train) -> float:
    return sum(int((train.item == i).sum()) for i in items) / len(items)
