"""EASE, iALS, item-kNN and user-kNN against naive float64 references, on tiny data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recbench import Interactions, ModelContext, UserBatch
from recbench.config import from_mapping
from recbench.errors import ConfigError
from recbench.evaluate import evaluate_ranking, padded_lists
from recbench_builtin.splitting.protocols import RatioConfig, ratio
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate
from recbench_builtin.metrics import METRICS
from recbench_builtin.models.baselines import MostPopularModel
from recbench_builtin.models.linear import (
    EASEConfig,
    EASEModel,
    IALSConfig,
    IALSModel,
    _als_epoch,
    gram,
    ials_buckets,
    spd_inverse,
)
from recbench_builtin.models.neighborhood import SPECS as KNN_SPECS
from recbench_builtin.models.neighborhood import KNNConfig, KNNModel

KEY = jax.random.key(0)


def random_interactions(n_users: int, n_items: int, density: float, seed: int,
                        ratings: bool = False) -> Interactions:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    r = rng.integers(1, 6, len(u)).astype(np.float32) if ratings else None
    return Interactions(u, i, n_users, n_items, r)


def batch_of(train: Interactions, users: np.ndarray) -> UserBatch:
    ptr, items = train.sequences()
    history, lengths = padded_lists(ptr, items, users, pad=train.n_items,
                                    width=max(1, int(train.user_counts.max())))
    return UserBatch(jnp.asarray(users, jnp.int32), jnp.asarray(history), jnp.asarray(lengths),
                     jnp.ones(len(users), bool), train.n_items)


def naive_similarity(a: np.ndarray, kind: str, shrink: float, alpha: float = 0.5) -> np.ndarray:
    """sim[t, n] between the columns of ``a`` (t: target, n: neighbour), by explicit loops."""
    m = a.shape[1]
    s = np.zeros((m, m))
    for t in range(m):
        for n in range(m):
            dot = a[:, t] @ a[:, n]
            qt, qn = a[:, t] @ a[:, t], a[:, n] @ a[:, n]
            if kind == "cosine":
                den = np.sqrt(qt) * np.sqrt(qn) + shrink
            elif kind == "asymmetric":
                den = qn ** alpha * qt ** (1 - alpha) + shrink
            else:
                den = qt + qn - dot + shrink
            s[t, n] = dot / den if den > 0 else 0.0
    return s


# ---------------------------------------------------------------- EASE


def test_ease_equals_numpy_closed_form():
    x = random_interactions(40, 25, 0.2, seed=1)
    fitted = EASEModel(EASEConfig(l2=3.0)).fit(x, key=KEY)
    xd = x.csr.toarray().astype(np.float64)
    p = np.linalg.inv(xd.T @ xd + 3.0 * np.eye(25))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(np.asarray(fitted.weights), b, atol=2e-5)
    users = np.arange(6)
    np.testing.assert_allclose(np.asarray(fitted.score(batch_of(x, users))), xd[users] @ b,
                               atol=1e-4)


@pytest.mark.parametrize("l2", [0.5, 2000.0])
def test_ease_block_inverse_is_accurate_when_ill_conditioned(l2):
    x = random_interactions(300, 600, 0.1, seed=10)  # 600 items > 512: the block inverse runs
    fitted = EASEModel(EASEConfig(l2=l2)).fit(x, key=KEY)
    xd = x.csr.toarray().astype(np.float64)
    p = np.linalg.inv(xd.T @ xd + l2 * np.eye(600))  # l2 = 0.5: ill-conditioned
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    assert np.abs(np.asarray(fitted.weights) - b).max() <= 1e-3 * np.abs(b).max()


def test_blocked_symmetric_gram_matches_numpy():
    x = random_interactions(70, 2100, 0.01, seed=9)  # 5 blocks of 16 users, 4 x 4 column blocks
    rng = np.random.default_rng(9)
    uw, iw = rng.random(70) + 0.5, rng.random(2100) + 0.5
    got = np.asarray(gram(x, uw, iw, block_elements=2100 * 16))
    xw = uw[:, None] * x.csr.toarray() * iw[None, :]
    np.testing.assert_allclose(got, xw.T @ xw, rtol=1e-5, atol=1e-5)


def test_spd_inverse_matches_float64_reference():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 150))
    spd = (a.T @ a + 5.0 * np.eye(150)).astype(np.float32)
    got = np.asarray(jax.jit(spd_inverse)(jnp.asarray(spd)))
    want = np.linalg.inv(spd.astype(np.float64))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


# ---------------------------------------------------------------- item-kNN


@pytest.mark.parametrize("kind,shrink,k", [("cosine", 2.0, 4), ("cosine", 0.0, 24),
                                           ("asymmetric", 1.0, 5), ("jaccard", 0.5, 6)])
def test_item_knn_weights_match_naive_reference(kind, shrink, k):
    x = random_interactions(50, 25, 0.25, seed=2)
    cfg = KNNConfig(k=k, similarity=kind, shrink=shrink, alpha=0.3)
    w = np.asarray(KNNModel(cfg, False, "ranking").fit(x, key=KEY).weights)
    s = naive_similarity(x.csr.toarray().astype(np.float64), kind, shrink, alpha=0.3)
    np.fill_diagonal(s, -np.inf)
    kk = min(k, 24)
    for j in range(25):  # target item j keeps its kk most similar items (ties: any of them)
        best = np.sort(s[j])[::-1][:kk]
        kept = np.flatnonzero(w[:, j])
        np.testing.assert_allclose(w[kept, j], s[j, kept], rtol=1e-5)
        np.testing.assert_allclose(np.sort(w[:, j])[::-1][:kk], np.maximum(best, 0), rtol=1e-5,
                                   atol=1e-7)
        assert len(kept) <= kk and w[j, j] == 0
    scores = np.asarray(KNNModel(cfg, False, "ranking").fit(x, key=KEY).score(
        batch_of(x, np.arange(5))))
    np.testing.assert_allclose(scores, x.csr.toarray()[:5] @ w, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- user-kNN


@pytest.mark.parametrize("kind,shrink", [("cosine", 3.0), ("jaccard", 0.0),
                                         ("asymmetric", 1.0)])
def test_user_knn_scores_match_naive_reference(kind, shrink):
    x = random_interactions(30, 40, 0.2, seed=3)
    xd = x.csr.toarray().astype(np.float64)
    k = 5
    cfg = KNNConfig(k=k, similarity=kind, shrink=shrink, alpha=0.7)
    fitted = KNNModel(cfg, True, "ranking").fit(x, key=KEY)
    users = np.arange(30)
    got = np.asarray(fitted.score(batch_of(x, users)))
    s = naive_similarity(xd.T, kind, shrink, alpha=0.7)  # users as columns
    np.fill_diagonal(s, -np.inf)
    checked = 0
    for u in users:
        order = np.sort(s[u])[::-1]
        if order[k - 1] - order[k] < 1e-6:  # a tie at the cut: any choice is right
            continue
        nbr = np.argsort(-s[u])[:k]
        np.testing.assert_allclose(got[u], s[u, nbr] @ xd[nbr], rtol=1e-5, atol=1e-6)
        checked += 1
    assert checked >= 10
    # no pruning: every other user contributes
    full = KNNModel(KNNConfig(k=1000, similarity=kind, shrink=shrink, alpha=0.7), True,
                    "ranking").fit(x, key=KEY)
    s0 = np.where(np.isfinite(s), s, 0.0)
    np.testing.assert_allclose(np.asarray(full.score(batch_of(x, users))), s0 @ xd, rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------- kNN-baseline (rating)


def naive_knn_baseline(x: Interactions, users, items, *, user_based: bool, k: int,
                       shrink: float, epochs: int = 10, reg_u: float = 15.0,
                       reg_i: float = 10.0) -> np.ndarray:
    """Surprise's KNNBaseline with pearson_baseline similarity, written as loops."""
    r = x.rating.astype(np.float64)
    mu = r.mean()
    bu, bi = np.zeros(x.n_users), np.zeros(x.n_items)
    for _ in range(epochs):
        for i in range(x.n_items):
            m = x.item == i
            bi[i] = (r[m] - mu - bu[x.user[m]]).sum() / (reg_i + m.sum())
        for u in range(x.n_users):
            m = x.user == u
            bu[u] = (r[m] - mu - bi[x.item[m]]).sum() / (reg_u + m.sum())
    resid = np.zeros((x.n_users, x.n_items))
    rated = np.zeros((x.n_users, x.n_items), bool)
    resid[x.user, x.item] = r - (mu + bu[x.user] + bi[x.item])
    rated[x.user, x.item] = True
    if not user_based:
        resid, rated = resid.T, rated.T
    n = resid.shape[0]
    sim = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            common = rated[a] & rated[b]
            c = common.sum()
            if a == b or c == 0:
                continue
            num = (resid[a, common] * resid[b, common]).sum()
            den = np.sqrt((resid[a, common] ** 2).sum() * (resid[b, common] ** 2).sum())
            sim[a, b] = 0.0 if den == 0 else num / den * (c - 1) / (c - 1 + shrink)
    out = []
    for u, i in zip(users, items):
        est = mu + bu[u] + bi[i]
        e, o = (u, i) if user_based else (i, u)
        cands = [(sim[e, v], resid[v, o]) for v in np.flatnonzero(rated[:, o]) if v != e]
        cands.sort(key=lambda t: -t[0])
        top = [(s_, d) for s_, d in cands[:k] if s_ > 0]
        if top:
            est += sum(s_ * d for s_, d in top) / sum(s_ for s_, _ in top)
        out.append(np.clip(est, r.min(), r.max()))
    return np.asarray(out)


@pytest.mark.parametrize("user_based", [True, False])
def test_knn_baseline_matches_naive_surprise_rule(user_based):
    x = random_interactions(25, 20, 0.35, seed=4, ratings=True)
    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 25, 60), rng.integers(0, 20, 60)
    cfg = KNNConfig(k=4, shrink=5.0)
    model = KNNModel(cfg, user_based, "rating").fit(x, key=KEY)
    got = np.asarray(model.predict(jnp.asarray(users), jnp.asarray(items)))
    want = naive_knn_baseline(x, users, items, user_based=user_based, k=4, shrink=5.0)
    # top-k ties among equal similarities can pick different neighbours; they are rare here
    assert np.mean(np.abs(got - want) < 1e-4) >= 0.95
    scores = np.asarray(model.score(batch_of(x, np.arange(3))))
    np.testing.assert_allclose(
        scores[1], np.asarray(model.predict(jnp.full(20, 1), jnp.arange(20))), atol=1e-5)


# ---------------------------------------------------------------- iALS


def test_ials_epoch_equals_dense_reference():
    x = random_interactions(30, 20, 0.2, seed=6)
    cfg = IALSConfig(factors=4, alpha=3.0, reg=0.5)
    ub, ib = ials_buckets(x, cfg)
    y0 = 0.1 * np.random.default_rng(0).standard_normal((20, 4))
    users, items, loss = _als_epoch(jnp.zeros((30, 4)), jnp.asarray(y0, jnp.float32), ub, ib,
                                    jnp.float32(3.0), jnp.float32(0.5))
    p = x.csr.toarray().astype(np.float64)
    c = 1.0 + 3.0 * p

    def solve(y, p, c):
        return np.stack([np.linalg.solve(y.T @ (c[u][:, None] * y) + 0.5 * np.eye(4),
                                         y.T @ (c[u] * p[u])) for u in range(p.shape[0])])

    xr = solve(y0, p, c)
    yr = solve(xr, p.T, c.T)
    np.testing.assert_allclose(np.asarray(users), xr, atol=1e-5)
    np.testing.assert_allclose(np.asarray(items), yr, atol=1e-5)
    want = (c * (p - xr @ yr.T) ** 2).sum() + 0.5 * ((xr ** 2).sum() + (yr ** 2).sum())
    assert float(loss) == pytest.approx(want, rel=1e-4)


def test_ials_loss_decreases_and_beats_most_popular():
    ds = generate(SyntheticConfig(n_users=300, n_items=150, mean_per_user=20, seed=1))
    split = ratio(ds.interactions, RatioConfig((0.8, 0.2)), np.random.default_rng(0))
    fitted = IALSModel(IALSConfig(factors=16, epochs=6, reg=10.0, alpha=1.0)).fit(
        split.train, key=KEY)
    losses = np.asarray(fitted.losses)
    assert np.all(np.diff(losses) <= 1e-4 * losses[:-1])  # ALS never increases its objective
    ndcg = [m for m in METRICS if m.name == "ndcg"]

    def score(model):
        return evaluate_ranking(model, train=split.train, test=split.test, metrics=ndcg,
                                ks=(10,)).metrics["ndcg@10"]

    assert score(fitted) > score(MostPopularModel().fit(split.train, key=KEY)) + 0.05
    assert fitted.fit_info["epochs_run"] == 6 and fitted.fit_info["epoch_s"] > 0


# ---------------------------------------------------------------- configs and unknown ids


@pytest.mark.parametrize("cls,field,value,text", [
    (KNNConfig, "k", 0, r"k must be >= 1 \(valid range: \[1, inf\)\)"),
    (KNNConfig, "shrink", -1.0, r"shrink must be >= 0 \(valid range"),
    (KNNConfig, "alpha", 1.5, r"alpha must lie in \[0, 1\]"),
    (KNNConfig, "similarity", "pearson", r"is not one of"),
    (EASEConfig, "l2", -5.0, r"l2 must be > 0 \(valid range: \(0, inf\)\)"),
    (EASEConfig, "l2", 0.0, r"l2 must be > 0"),
    (IALSConfig, "reg", -1.0, r"reg must be > 0 \(valid range"),
    (IALSConfig, "factors", 0, r"factors must be >= 1"),
    (IALSConfig, "alpha", -0.5, r"alpha must be >= 0"),
])
def test_configs_reject_out_of_range_values(cls, field, value, text):
    with pytest.raises(ConfigError, match=text):
        from_mapping(cls, {field: value})


def test_feature_weighting_is_ranking_only():
    make = next(s for s in KNN_SPECS if s.name == "item-knn").factory
    with pytest.raises(ConfigError, match="ranking task only"):
        make(KNNConfig(feature_weighting="bm25"), ModelContext(3, 3, task="rating"))


@pytest.mark.parametrize("name", ["ease", "ials", "item-knn", "user-knn", "item-knn-bm25",
                                  "user-knn-tfidf"])
def test_unknown_users_and_items_get_finite_documented_scores(name):
    full = random_interactions(20, 15, 0.3, seed=7)
    keep = (full.user != 0) & (full.item != 0)  # user 0 and item 0 never seen in training
    train = full.subset(keep)
    model = {"ease": lambda: EASEModel(EASEConfig(l2=1.0)),
             "ials": lambda: IALSModel(IALSConfig(factors=4, epochs=2)),
             "item-knn": lambda: KNNModel(KNNConfig(k=3), False, "ranking"),
             "user-knn": lambda: KNNModel(KNNConfig(k=3), True, "ranking"),
             "item-knn-bm25": lambda: KNNModel(KNNConfig(k=3, feature_weighting="bm25"), False,
                                               "ranking"),
             "user-knn-tfidf": lambda: KNNModel(KNNConfig(k=3, feature_weighting="tfidf"),
                                                True, "ranking")}[name]()
    scores = np.asarray(model.fit(train, key=KEY).score(batch_of(train, np.arange(4))))
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[0], 0.0)  # unknown user: every item scores 0
    np.testing.assert_array_equal(scores[:, 0], 0.0)  # unknown item scores 0


@pytest.mark.parametrize("user_based", [True, False])
def test_rating_unknown_user_or_item_falls_back_to_baseline(user_based):
    full = random_interactions(20, 15, 0.3, seed=8, ratings=True)
    train = full.subset((full.user != 0) & (full.item != 0))
    fitted = KNNModel(KNNConfig(k=5), user_based, "rating").fit(train, key=KEY)
    pred = np.asarray(fitted.predict(jnp.asarray([0, 0, 3]), jnp.asarray([0, 4, 0])))
    assert np.isfinite(pred).all()
    s = fitted.tables
    mu, bu, bi = float(s["mu"]), np.asarray(s["bu"]), np.asarray(s["bi"])
    assert bu[0] == 0 and bi[0] == 0
    assert pred[0] == pytest.approx(np.clip(mu, 1, 5), abs=1e-5)
    assert pred[2] == pytest.approx(np.clip(mu + bu[3], 1, 5), abs=1e-5)
