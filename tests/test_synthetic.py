"""The synthetic generator: determinism, counts, config validation, and that each planted signal
(collaborative, content, sequential, popularity, cold items) is there when switched on and absent
when switched off; at experiment level, a collaborative model beats most-popular on it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recbench.config import Experiment, from_mapping
from recbench.errors import ConfigError
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench_builtin.datasets import synthetic
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate, planted_structure

SMALL = {"n_users": 300, "n_items": 200, "mean_per_user": 20}
ALL_ON = {**SMALL, "content": 1.0, "sequential": 0.5, "cold_item_fraction": 0.2}


def pairs(ds):
    x = ds.interactions
    return x.user.astype(np.int64) * x.n_items + x.item


def gini(counts: np.ndarray) -> float:
    c = np.sort(counts.astype(float))
    n = len(c)
    return float((2 * np.arange(1, n + 1) - n - 1) @ c / (n * c.sum()))


def per_user_sequences(ds):
    """Each user's items in time order, as generator item ids."""
    indptr, items = ds.interactions.sequences()
    gen = ds.item_ids[items]
    return [gen[indptr[u]:indptr[u + 1]] for u in range(ds.interactions.n_users)]


# ---------------------------------------------------------------- basics


@pytest.mark.parametrize("overrides", [{}, ALL_ON])
def test_same_seed_same_data_other_seed_other_data(overrides):
    cfg = SyntheticConfig(**overrides)
    a, b = generate(cfg), generate(cfg)
    assert a.interactions.fingerprint == b.interactions.fingerprint
    assert np.array_equal(a.item_features.values, b.item_features.values)
    assert np.array_equal(a.item_ids, b.item_ids)
    c = generate(SyntheticConfig(**{**overrides, "seed": 1}))
    assert c.interactions.fingerprint != a.interactions.fingerprint


@pytest.mark.parametrize("overrides", [
    {}, ALL_ON, {"n_users": 80, "n_items": 40, "mean_per_user": 10},
    {"n_users": 50, "n_items": 40, "mean_per_user": 20, "popularity": 2.0},  # near n_items/2 each
    {**SMALL, "collaborative": 0.0, "activity_spread": 0.0},
])
def test_counts_ratings_timestamps_features(overrides):
    cfg = SyntheticConfig(**overrides)
    ds = generate(cfg)
    x = ds.interactions
    assert x.n_users == cfg.n_users and x.n_items <= cfg.n_items
    assert x.user_counts.min() >= 5 and x.user_counts.max() <= cfg.n_items // 2
    assert x.item_counts.min() >= 1  # only drawn items have internal ids
    assert len(np.unique(pairs(ds))) == len(x), "duplicate (user, item) pairs"
    assert set(np.unique(x.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(x.rating)) >= 3
    # rows are in generation order, grouped by user; time strictly increases within a user
    assert np.all(np.diff(x.user) >= 0)
    same = x.user[1:] == x.user[:-1]
    assert np.all(np.diff(x.timestamp)[same] > 0)
    # item features: the binary attributes and a price, one row per internal item
    f = ds.item_features
    assert f.columns == tuple(f"genre_{j}" for j in range(cfg.n_attributes)) + ("price",)
    assert f.values.shape == (x.n_items, cfg.n_attributes + 1)
    assert set(np.unique(f.values[:, :-1])) <= {0.0, 1.0} and (f.values[:, -1] > 0).all()
    truth = planted_structure(cfg)
    assert np.array_equal(f.values[:, :-1], truth["attributes"][ds.item_ids])


def test_mean_activity_follows_config():
    cfg = SyntheticConfig(n_users=2000, n_items=300, mean_per_user=30)
    assert abs(len(generate(cfg).interactions) / cfg.n_users - 30) < 1.5


def test_metadata_records_signals_and_leaks_no_truth():
    ds = generate(SyntheticConfig(**ALL_ON))
    meta = ds.metadata
    assert meta["signals"] == {"collaborative": 1.0, "content": 1.0, "sequential": 0.5,
                               "popularity": 1.0, "cold_items": 0.2}
    assert meta["signals_on"] == ["cold_items", "collaborative", "content", "popularity",
                                  "sequential"]
    assert meta["config"]["sequential"] == 0.5
    off = generate(SyntheticConfig(**SMALL, collaborative=0.0, popularity=0.0)).metadata
    assert off["signals_on"] == []
    # No latent factor, attribute weight or transition table anywhere in the dataset.
    arrays = [v for v in meta.values() if isinstance(v, np.ndarray)]
    assert all(a.dtype == bool for a in arrays)
    assert ds.user_features is None and set(ds.item_info) == {"cold"}


@pytest.mark.parametrize("bad", [
    {"sequential": 1.5}, {"sequential": -0.1}, {"content": -1.0}, {"collaborative": -0.5},
    {"cold_item_fraction": 0.9}, {"n_attributes": 0}, {"popularity": -1.0},
    {"mean_per_user": 4}, {"mean_per_user": 200}, {"activity_spread": -1.0}, {"n_items": 5},
])
def test_config_ranges_are_checked(bad):
    with pytest.raises(ConfigError):
        from_mapping(SyntheticConfig, bad)


def test_unknown_config_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="Did you mean 'sequential'"):
        from_mapping(SyntheticConfig, {"sequentail": 0.5})


def test_default_size_is_fast():
    best = min(_timed(SyntheticConfig()) for _ in range(3))
    assert best < 0.5, f"default synthetic dataset took {best:.3f} s (target < 0.1 s)"


def _timed(cfg):
    t = time.perf_counter()
    generate(cfg)
    return time.perf_counter() - t


def test_proposal_sampler_matches_exact_sampler(monkeypatch):
    """Rejection sampling from the popularity proposals and the Gumbel top-k fallback draw the same
    distribution (successive sampling with weights popularity x sigmoid(affinity))."""
    cfg = SyntheticConfig(n_users=10_000, n_items=60, mean_per_user=8, content=1.0)
    fast = generate(cfg).interactions
    monkeypatch.setattr(synthetic, "_ROUNDS", 0)  # every user through the exact fallback
    exact = generate(cfg).interactions
    assert len(fast) == len(exact)
    p = np.bincount(fast.item, minlength=fast.n_items) / len(fast)
    q = np.bincount(exact.item, minlength=exact.n_items) / len(exact)
    assert 0.5 * np.abs(p - q).sum() < 0.02  # 0.011 measured; 0.036 if the sharpness were 2
    # first items (first accepted proposal vs top Gumbel key) agree too
    first = lambda x: x.item[np.r_[0, np.cumsum(x.user_counts)[:-1]]]  # noqa: E731
    pf = np.bincount(first(fast), minlength=fast.n_items) / cfg.n_users
    qf = np.bincount(first(exact), minlength=exact.n_items) / cfg.n_users
    assert 0.5 * np.abs(pf - qf).sum() < 0.07  # sampling noise alone is ~0.04


# ---------------------------------------------------------------- one signal at a time


def _true_affinity(ds, cfg, which):
    truth = planted_structure(cfg)
    x = ds.interactions
    gen_items = ds.item_ids[x.item]
    if which == "collaborative":
        return np.einsum("ij,ij->i", truth["user_factors"][x.user],
                         truth["item_factors"][gen_items])
    a = truth["attributes"]
    prevalence = a.mean(0)
    centred = (a - prevalence) / np.sqrt(np.sum(prevalence * (1 - prevalence)))
    return np.einsum("ij,ij->i", truth["attribute_weights"][x.user], centred[gen_items])


@pytest.mark.parametrize("which", ["collaborative", "content"])
def test_preference_signals_are_planted_only_when_on(which):
    on = {"collaborative": 0.0, which: 1.0}
    cfg_on = SyntheticConfig(**SMALL, **on)
    cfg_off = SyntheticConfig(**SMALL, collaborative=0.0)
    aff_on = _true_affinity(generate(cfg_on), cfg_on, which).mean()
    aff_off = _true_affinity(generate(cfg_off), cfg_off, which).mean()
    assert aff_on > 0.4 and abs(aff_off) < 0.1, (aff_on, aff_off)


def _attribute_auc(ds) -> float:
    """Profile each user by the attributes of the first half of their items (in time), score every
    item by profile . attributes; the mean AUC of the second half against the unseen items."""
    x = ds.interactions
    a = ds.item_features.values[:, :-1]
    a = a - a.mean(0)
    aucs = []
    for seq in per_user_sequences(ds):
        internal = np.searchsorted(ds.item_ids, seq)
        half = len(internal) // 2
        profile = a[internal[:half]].mean(0)
        scores = a @ profile
        pos = scores[internal[half:]]
        neg = np.delete(scores, internal)
        aucs.append(((pos[:, None] > neg[None, :]).mean()
                     + 0.5 * (pos[:, None] == neg[None, :]).mean()))
    assert len(aucs) == x.n_users
    return float(np.mean(aucs))


def test_content_signal_makes_attributes_predict_interactions():
    on = generate(SyntheticConfig(**SMALL, collaborative=0.0, content=1.5))
    off = generate(SyntheticConfig(**SMALL, collaborative=1.0, content=0.0))
    auc_on, auc_off = _attribute_auc(on), _attribute_auc(off)
    assert auc_on > 0.65 and abs(auc_off - 0.5) < 0.04, (auc_on, auc_off)


def _transition_share(ds, cfg) -> float:
    succ = planted_structure(cfg)["successors"]
    hits = total = 0
    for seq in per_user_sequences(ds):
        prev, nxt = seq[:-1], seq[1:]
        hits += int((succ[prev] == nxt[:, None]).any(1).sum())
        total += len(nxt)
    return hits / total


def test_sequential_signal_plants_markov_transitions():
    on_cfg = SyntheticConfig(**SMALL, collaborative=0.0, sequential=0.8)
    off_cfg = SyntheticConfig(**SMALL, collaborative=0.0, sequential=0.0)
    on, off = _transition_share(generate(on_cfg), on_cfg), _transition_share(generate(off_cfg),
                                                                             off_cfg)
    assert on > 0.5 and off < 0.06, (on, off)
    # with the collaborative signal also on, transitions still dominate
    mix = SyntheticConfig(**SMALL, sequential=0.5)
    assert _transition_share(generate(mix), mix) > 0.3


def test_cold_items_appear_only_after_the_cut():
    cfg = SyntheticConfig(**SMALL, cold_item_fraction=0.2)
    ds = generate(cfg)
    x = ds.interactions
    cold, cut = ds.metadata["cold_items"], ds.metadata["cold_cut_time"]
    assert cold.dtype == bool and cold.shape == (x.n_items,)
    assert np.array_equal(ds.item_info["cold"], cold)
    assert np.array_equal(cold, planted_structure(cfg)["cold"][ds.item_ids])
    assert abs(cold.sum() - 0.2 * cfg.n_items) <= 0.05 * cfg.n_items
    is_cold = cold[x.item]
    assert is_cold.any() and (x.timestamp[is_cold] >= cut).all()
    assert (x.timestamp[~is_cold] < cut).mean() > 0.5  # warm items span the whole range
    # a global temporal cut at `cut` leaves every cold item out of training
    assert not np.isin(np.flatnonzero(cold), x.item[x.timestamp < cut]).any()
    assert not generate(SyntheticConfig(**SMALL)).metadata["cold_items"].any()


def test_popularity_skew():
    flat = generate(SyntheticConfig(**SMALL, popularity=0.0)).interactions.item_counts
    skew = generate(SyntheticConfig(**SMALL, popularity=1.5)).interactions.item_counts
    top = lambda c: np.sort(c)[::-1][:len(c) // 10].sum() / c.sum()  # noqa: E731
    assert gini(skew) > gini(flat) + 0.3
    assert top(skew) > 2 * top(flat)


# ---------------------------------------------------------------- experiment level


def test_collaborative_model_beats_most_popular_beats_random(tmp_path):
    registry = Registry.build(load_plugins(allow=set()))
    names = registry.names("model")
    collaborative = [m for m in ("ease", "ials", "bpr") if m in names][:1]
    models = ["random", "most-popular", *collaborative]
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic"}],
        "models": [{"name": m} for m in models],
        "seeds": [0], "protocol": {"metrics": ["ndcg"], "ks": [10]}})
    records = Runner(exp, registry, RunOptions(tmp_path / "results")).run()
    ndcg = {r["model"]: r["metrics"]["ndcg@10"] for r in records}
    assert ndcg["most-popular"] > ndcg["random"] + 0.05, ndcg
    if not collaborative:
        pytest.skip("no collaborative model registered (ease/ials/bpr)")
    assert ndcg[collaborative[0]] > ndcg["most-popular"] + 0.05, ndcg  # ease: 0.30 vs 0.20
