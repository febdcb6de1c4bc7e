"""Content models and the cold-start protocol: feature encoding rules and bad input, the cold
candidate set and "cannot serve cold items" records, and planted signals that separate the
content family from collaborative filtering."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import scipy.sparse as sp

from recbench.api import DataError, FeatureTable, ModelContext
from recbench.config import Experiment, from_mapping
from recbench.data import Interactions
from recbench.errors import ConfigError
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner, model_context
from recbench.store import ResultStore
from recbench.testing.contract import _batch
from recbench_builtin.models.content.features import (FeatureOptions, category_indicators,
                                                      encode_items)
from recbench_builtin.models._vocabulary import top_terms
from recbench_builtin.models.content.knn import ContentKNN, ContentKNNConfig
from recbench_builtin.splitting.protocols import ColdItemsConfig

BUILTIN = Registry.build(load_plugins(allow=set()))


def context(values, columns, text=None):
    values = np.asarray(values, np.float32)
    return ModelContext(len(values), len(values), FeatureTable(values, tuple(columns)),
                        item_text=None if text is None else np.array(text, dtype=object))


def test_encoding_keeps_categories_scales_numbers_and_drops_constant_columns():
    price = [1.0, 2.0, 3.0, 4.0, 500.0]  # heavy right tail: log1p before robust scaling
    ctx = context(np.column_stack([[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], price, [7] * 5]),
                  ["genre_a", "genre_b", "price", "constant"],
                  text=["red heart mug", "blue mug", "", "red lamp", "heart lamp"])
    enc = encode_items(ctx, FeatureOptions(text_min_df=2), "test")
    assert enc.dropped == ("constant",)
    assert enc.columns[:3] == ("genre_a", "genre_b", "log1p(price)")
    assert {"text:heart", "text:mug", "text:red", "text:lamp"} <= set(enc.columns)
    rows = enc.matrix.toarray()
    assert np.isfinite(rows).all()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    assert np.abs(enc.numeric).max() <= 5.0  # the outlier is clipped
    # Price bands are categories for popularity by category.
    assert category_indicators(enc).shape[0] == 5


def test_text_vocabulary_breaks_frequency_ties_alphabetically():
    # "zoo" in three items, five words in two, "ant" in one: a vocabulary of three keeps "zoo"
    # and then the alphabetically first two. scikit-learn's max_features cut (numpy's unstable
    # argsort) kept {bell, lamp, zoo} for these texts on a machine with AVX-512.
    docs = ["zeta yak zoo", "zeta yak", "zoo lamp", "lamp fig zoo", "fig bell", "bell ant"]
    ctx = context(np.zeros((6, 0)), [], text=docs)
    enc = encode_items(ctx, FeatureOptions(text_features=3, text_min_df=2), "test")
    assert set(enc.columns) == {"text:bell", "text:fig", "text:zoo"}
    assert top_terms(docs, 3, min_df=2) == {"bell": 0, "fig": 1, "zoo": 2}
    assert top_terms(docs, 3, min_df=4) is None  # no word is in four items
    # binary=True counts items, not occurrences: "yak" three times in one item stays a tie.
    repeated = ["yak yak yak", "fig", "fig", "bell"]
    assert top_terms(repeated, 1, binary=True) == {"fig": 0}
    assert top_terms(repeated, 1) == {"yak": 0}


def test_items_without_features_score_zero_never_nan():
    ctx = context([[0, 0], [1, 0], [0, 1], [1, 1]], ["g1", "g2"], text=["", "", "", ""])
    enc = encode_items(ctx, FeatureOptions(), "test")
    assert enc.empty.tolist() == [True, False, False, False]
    train = Interactions([0, 1, 1], [1, 2, 3], 4, 4)
    fitted = ContentKNN(ContentKNNConfig(), ctx).fit(train, key=None)
    scores = np.asarray(fitted.score(_batch(train, np.arange(4, dtype=np.int32))))
    assert np.isfinite(scores).all() and (scores[:, 0] == 0).all()
    assert (scores[2:] == 0).all()  # users without history


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_feature_is_an_error_naming_the_column(bad):
    ctx = context([[1.0, 2.0], [bad, 3.0], [2.0, 1.0]], ["price", "discount"])
    with pytest.raises(DataError, match=r"'price' has 1 NaN or infinite"):
        encode_items(ctx, FeatureOptions(), "test")


def test_sparse_table_with_bad_value_names_the_column():
    table = FeatureTable(sp.csr_matrix(np.array([[1.0, 0], [0, np.nan]], np.float32)), ("a", "b"))
    with pytest.raises(DataError, match="'b'"):
        encode_items(ModelContext(2, 2, table), FeatureOptions(), "test")


def test_no_side_information_is_refused_naming_both_tables():
    with pytest.raises(DataError, match=r"no item features .*item_features.* no item text"):
        encode_items(ModelContext(3, 3), FeatureOptions(), "content-knn")
    with pytest.raises(DataError, match="no usable feature"):
        encode_items(context([[1.0], [1.0]], ["flat"], text=["", ""]), FeatureOptions(), "m")


def test_dataset_without_item_features_is_refused_before_fitting(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 20, "n_items": 20,
                                                      "mean_per_user": 5}}],
        "models": [{"name": "content-knn"}]})
    runner = Runner(exp, BUILTIN, RunOptions(tmp_path))
    d = runner.plan_.datasets[0]
    ds = runner.load_dataset(d).replace(item_features=None)
    with pytest.raises(ConfigError, match="content-knn.* needs item_features"):
        runner.check_dataset(d, ds)


def cold_experiment(signal: dict, candidates: str = "cold") -> Experiment:
    return from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 300, "n_items": 200,
                                                      "mean_per_user": 15, **signal}}],
        "models": [{"name": "random"}, {"name": "most-popular"}, {"name": "category-popular"},
                   {"name": "content-knn"}, {"name": "item-knn"}],
        "seeds": [0], "protocol": {"split": {"name": "cold-items",
                                             "config": {"test_item_fraction": 0.2}},
                                   "candidates": candidates, "metrics": ["recall", "ndcg"],
                                   "ks": [20]}})


def test_cold_split_records_cf_models_as_unsupported_and_ranks_cold_items(tmp_path):
    records = Runner(cold_experiment({"content": 3.0, "collaborative": 0.0}), BUILTIN,
                     RunOptions(tmp_path)).run()
    by_model = {r["model"]: r for r in records}
    for cf in ("most-popular", "item-knn"):
        assert by_model[cf]["status"] == "unsupported"
        assert by_model[cf]["reason"] == "cannot serve cold items"
        assert "metrics" not in by_model[cf]
    ok = {m: r["metrics"]["ndcg@20"] for m, r in by_model.items() if r["status"] == "ok"}
    assert set(ok) == {"random", "category-popular", "content-knn"}
    assert ok["content-knn"] > 1.5 * ok["random"]
    assert by_model["content-knn"]["identity"]["protocol"]["candidates"] == "cold"
    # Stored like a success: a second run re-runs nothing.
    store = ResultStore(tmp_path)
    assert {r["status"] for r in store.records()} == {"ok", "unsupported"}
    again = Runner(cold_experiment({"content": 3.0, "collaborative": 0.0}), BUILTIN,
                   RunOptions(tmp_path))
    assert all(t.stored for *_, planned in again.prepare() for t in planned)


@pytest.mark.parametrize("candidates", ["cold", "all"])
def test_hybrids_early_stop_on_the_protocols_candidates(candidates, monkeypatch):
    # What ranking_validator does with them: tests/test_evaluate_topk.py.
    from recbench.train import ranking_validator
    from recbench_builtin.models.hybrid import fm, lightfm, two_tower

    experiment = cold_experiment({"content": 3.0}, candidates)
    runner = Runner(experiment, BUILTIN, RunOptions("unused"))
    ds = runner.load_dataset(runner.plan_.datasets[0])
    ctx = model_context(ds, experiment.protocol)
    assert ctx.candidates == candidates
    split = runner.plan_.splitter.spec.split(ds.interactions, ColdItemsConfig(0.2, 0.1),
                                             np.random.default_rng(0))
    asked = []

    def spy(*args, **kwargs):
        asked.append(kwargs.get("candidates", "all"))
        return ranking_validator(*args, **kwargs)

    for module in (fm, lightfm, two_tower):
        monkeypatch.setattr(module, "ranking_validator", spy)
    for name in ("fm", "lightfm", "two-tower"):
        spec = BUILTIN.model(name)
        spec.factory(spec.config(epochs=1), ctx).fit(split.train, valid=split.valid,
                                                      key=jax.random.key(0))
    assert asked == [candidates] * 3


def test_cold_candidates_rank_fewer_items_than_all(tmp_path):
    signal = {"content": 3.0, "collaborative": 0.0}
    cold = Runner(cold_experiment(signal, "cold"), BUILTIN, RunOptions(tmp_path / "c")).run()
    full = Runner(cold_experiment(signal, "all"), BUILTIN, RunOptions(tmp_path / "a")).run()
    knn = lambda rs: next(r for r in rs if r["model"] == "content-knn")  # noqa: E731
    # The same split and model: among the cold items alone the held-out items rank higher.
    assert knn(cold)["provenance"]["split_fingerprint"] == knn(full)["provenance"]["split_fingerprint"]
    assert knn(cold)["metrics"]["recall@20"] > knn(full)["metrics"]["recall@20"]
    assert "candidates" not in knn(full)["identity"]["protocol"]  # "all" keeps old keys


def test_candidates_cold_is_refused_off_the_ranking_task_and_with_a_warm_tuning_split():
    with pytest.raises(ConfigError, match="ranking task only"):
        from_mapping(Experiment, {"protocol": {"candidates": "cold", "task": "binary",
                                               "metrics": ["auc"]}})
    exp = from_mapping(Experiment, {
        "models": [{"name": "random"}],
        "protocol": {"candidates": "cold", "split": {"name": "cold-items"},
                     "tuning": {"split": {"name": "ratio"}}}})
    with pytest.raises(ConfigError, match="protocol.tuning.split.*cold-items"):
        Runner(exp, BUILTIN, RunOptions("unused"))


def test_candidates_cold_on_a_warm_split_fails_the_trial_with_a_clear_error(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 60, "n_items": 30,
                                                      "mean_per_user": 8}}],
        "models": [{"name": "random"}], "protocol": {"candidates": "cold"}})
    (record,) = Runner(exp, BUILTIN, RunOptions(tmp_path)).run()
    assert record["status"] == "failed" and "no test item is cold" in record["error"]


def warm_ndcg(tmp_path, signal: dict) -> dict[str, float]:
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {
            "n_users": 800, "n_items": 400, "mean_per_user": 10, "popularity": 0.3,
            "n_attributes": 32, **signal}}],
        "models": [{"name": "content-knn"}, {"name": "item-knn"},
                   {"name": "lightfm", "config": {"epochs": 8, "eval_every": 8}}], "seeds": [0],
        "protocol": {"metrics": ["ndcg"], "ks": [20]}})
    records = Runner(exp, BUILTIN, RunOptions(tmp_path / json.dumps(signal))).run()
    return {r["model"]: r["metrics"]["ndcg@20"] for r in records}


def test_planted_signals_separate_content_from_collaborative_filtering(tmp_path):
    content = warm_ndcg(tmp_path, {"content": 3.0, "collaborative": 0.0})
    collaborative = warm_ndcg(tmp_path, {"content": 0.0, "collaborative": 3.0})
    assert content["content-knn"] > content["item-knn"]
    assert content["lightfm"] > content["item-knn"]  # the hybrid uses the content signal
    assert collaborative["content-knn"] < collaborative["item-knn"]


@pytest.mark.parametrize("hidden", [(), (8,), (8, 4)])
def test_fm_full_ranking_equals_the_pairwise_formula(hidden):
    """The ranking decomposition (and DeepFM's blocked MLP) gives y(u, i) of every pair."""
    import jax
    import jax.numpy as jnp
    from recbench_builtin.models.content.knn import padded_rows
    from recbench_builtin.models.hybrid.fm import _mlp, _pair_logits, _scores
    rng = np.random.default_rng(0)
    n_users, n_items, d, k = 5, 300, 7, 4  # more items than one block of the MLP
    r = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)  # noqa: E731
    params = {"w0": r(), "w_user": r(n_users), "w_item": r(n_items), "w_attr": r(d),
              "v_user": r(n_users, k), "v_item": r(n_items, k), "v_attr": r(d, k)}
    if hidden:
        init = _mlp(hidden).init(jax.random.key(0), jnp.zeros((1, 3 * k)))["params"]
        params["mlp"] = jax.tree.map(lambda p: r(*p.shape), init)  # non-zero biases too
    features = r(n_items, d)
    index, value = padded_rows(sp.csr_matrix(np.asarray(features)))
    rows = (jnp.asarray(index), jnp.asarray(value))
    users = jnp.arange(n_users)
    full = np.asarray(_scores(params, rows, users, hidden=hidden))
    u, i = jnp.meshgrid(users, jnp.arange(n_items), indexing="ij")
    pairs = np.asarray(_pair_logits(params, hidden, u, i, rows))
    # Brute force FM: 1/2 sum_k [(sum_j v_jk x_j)^2 - sum_j v_jk^2 x_j^2] over the three fields.
    v = np.concatenate([np.asarray(params["v_user"])[:, None].repeat(n_items, 1)[..., None, :],
                        np.asarray(params["v_item"])[None].repeat(n_users, 0)[..., None, :],
                        (np.asarray(features)[:, :, None] * np.asarray(params["v_attr"])[None])
                        [None].repeat(n_users, 0)], axis=2)
    pairwise = 0.5 * ((v.sum(2) ** 2).sum(-1) - (v ** 2).sum((2, 3)))
    if not hidden:
        brute = (float(params["w0"]) + np.asarray(params["w_user"])[:, None]
                 + np.asarray(params["w_item"])[None] + (np.asarray(features)
                                                        @ np.asarray(params["w_attr"]))[None]
                 + pairwise)
        np.testing.assert_allclose(pairs, brute, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(full, pairs, rtol=1e-4, atol=1e-4)


def test_unsupported_trials_are_listed_not_failed():
    from recbench.report.tables import current_failures, unsupported
    records = [{"dataset": "d", "model": "bpr", "seed": s, "status": "unsupported",
                "reason": "cannot serve cold items"} for s in (0, 1)]
    records.append({"dataset": "d", "model": "x", "seed": 0, "status": "failed", "error": "E"})
    assert unsupported(records) == ["d / bpr: cannot serve cold items (2 trials)"]
    assert [r["model"] for r in current_failures(records)] == ["x"]


def test_sparse_item_rows_score_as_the_dense_product():
    import jax.numpy as jnp
    from recbench_builtin.models.content.knn import _cosine, _cosine_sparse, padded_rows
    items = sp.random(50, 40, density=0.1, format="csr", random_state=0, dtype=np.float32)
    profiles = jnp.asarray(np.random.default_rng(0).standard_normal((6, 40)), jnp.float32)
    users = jnp.arange(6)
    index, value = padded_rows(items)
    np.testing.assert_allclose(
        np.asarray(_cosine_sparse(profiles, jnp.asarray(index), jnp.asarray(value), users)),
        np.asarray(_cosine(profiles, jnp.asarray(items.toarray()), users)), rtol=1e-5, atol=1e-5)


def test_padded_rows_are_no_wider_than_the_matrix():
    # Three attribute fields (price, discount, sales): rows of 3, not padded to 8.
    from recbench_builtin.models.content.knn import padded_rows
    dense = np.array([[1.0, 0.0, 2.0], [0.5, 0.5, 0.5]], np.float32)
    index, value = padded_rows(sp.csr_matrix(dense))
    assert index.shape == value.shape == (2, 3)
    rebuilt = np.zeros_like(dense)
    np.add.at(rebuilt, (np.arange(2)[:, None], index), value)
    np.testing.assert_array_equal(rebuilt, dense)
    wide = sp.random(4, 40, density=0.1, format="csr", random_state=0)
    assert padded_rows(wide)[0].shape[1] == 8  # the longest row rounded up to 8
