"""Runs end to end: provenance, resume, failure isolation, determinism, batch-size invariance."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest

from recbench import ModelSpec, hookimpl
from recbench.config import Experiment, from_mapping
from recbench.errors import ConfigError, RecbenchError
from recbench.data import Dataset, Interactions
from recbench.evaluate import evaluate_ranking
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.store import ResultStore

TINY = {"n_users": 80, "n_items": 40, "mean_per_user": 10}


def experiment(**protocol):
    return from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}],
        "models": [{"name": "random"}, {"name": "most-popular"}],
        "seeds": [0, 1], "protocol": {"metrics": ["ndcg", "recall", "auc"], "ks": [5, 10],
                                      **protocol}})


@dataclass(frozen=True)
class _Broken:
    kind: str

    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        b = batch.users.shape[0]
        if self.kind == "nan":
            return jnp.full((b, batch.n_items), jnp.nan, jnp.float32)
        return jnp.zeros((b, 3), jnp.float32)


class BrokenModels:
    @hookimpl
    def register_models(self):
        return [ModelSpec(f"broken-{k}", "baseline", frozenset({"ranking"}),
                          lambda c, x, k=k: _Broken(k)) for k in ("nan", "shape")]


def run(tmp_path, exp=None, objects=()):
    reg = Registry.build(load_plugins(allow=set(), objects=objects))
    return Runner(exp or experiment(), reg, RunOptions(tmp_path / "results")).run()


def test_run_stores_metrics_and_provenance(tmp_path):
    records = run(tmp_path)
    assert [r["status"] for r in records] == ["ok"] * 4
    by_model = {}
    for r in records:
        by_model.setdefault(r["model"], []).append(r["metrics"]["ndcg@10"])
        prov = r["provenance"]
        assert prov["dataset_checksum"] and len(prov["split_fingerprint"]) == 64
        assert prov["versions"]["jax"] and prov["hardware"]["device_count"] >= 1
        assert set(r["timings"]) >= {"fit_s", "fit_compile_s", "score_s", "rank_s", "eval_compile_s"}
        assert r["counts"]["users_evaluated"] > 0
        assert 0 < r["memory"]["peak_host_mb"] and r["memory"]["peak_host_scope"] in ("trial", "process")
        assert r["identity"]["seed"] == r["seed"]
    # planted popularity skew: a harness that ranks random above most-popular is broken
    assert np.mean(by_model["most-popular"]) > np.mean(by_model["random"]) + 0.05


def test_rerun_skips_stored_trials_and_resumes(tmp_path):
    first = run(tmp_path)
    trials = tmp_path / "results" / "trials"
    stamps = {p.name: p.stat().st_mtime_ns for p in trials.glob("*.json")}
    (trials / f"{first[0]['key']}.json").unlink()  # as if the run was killed before this trial
    second = run(tmp_path)
    assert [r["metrics"] for r in second] == [r["metrics"] for r in first]
    for p in trials.glob("*.json"):
        if p.name != f"{first[0]['key']}.json":
            assert p.stat().st_mtime_ns == stamps[p.name], "a stored trial was rewritten"


def test_same_seed_same_numbers_different_seed_different_split(tmp_path):
    a = run(tmp_path / "a")
    b = run(tmp_path / "b")
    assert [r["metrics"] for r in a] == [r["metrics"] for r in b]
    fingerprints = {r["seed"]: r["provenance"]["split_fingerprint"] for r in a}
    assert fingerprints[0] != fingerprints[1]


def test_failing_models_are_recorded_and_the_run_continues(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}],
        "models": [{"name": "broken-nan"}, {"name": "broken-shape"}, {"name": "most-popular"}]})
    records = run(tmp_path, exp, objects=(BrokenModels(),))
    status = {r["model"]: r for r in records}
    assert "NaN" in status["broken-nan"]["error"]
    assert "shape" in status["broken-shape"]["error"]
    assert status["most-popular"]["status"] == "ok"
    failed = list((tmp_path / "results" / "failed").glob("*.json"))
    assert len(failed) == 2
    # a corrupted record is left untouched and the stored good trial is never lost
    good = tmp_path / "results" / "trials" / f"{status['most-popular']['key']}.json"
    again = run(tmp_path, exp, objects=(BrokenModels(),))
    assert json.loads(good.read_text())["metrics"] == status["most-popular"]["metrics"]
    assert [r["status"] for r in again] == ["failed", "failed", "ok"]


class FlakySplitter:
    """A splitter that raises on its first call only."""

    def __init__(self) -> None:
        self.calls = 0

    def split(self, x, config, rng):
        from recbench_builtin.splitting.protocols import ratio

        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the split's source went away")
        return ratio(x, config, rng)

    @hookimpl
    def register_splitters(self):
        from recbench import SplitterSpec
        from recbench_builtin.splitting.protocols import RatioConfig

        return [SplitterSpec("flaky", self.split, RatioConfig)]


def test_a_failed_split_fails_its_trial_and_the_next_trial_splits_again(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}],
        "models": [{"name": "random"}, {"name": "most-popular"}],
        "protocol": {"split": {"name": "flaky"}}})
    flaky = FlakySplitter()
    first, second = run(tmp_path, exp, objects=(flaky,))
    assert (first["status"], first["stage"]) == ("failed", "splitting the data")
    assert "RuntimeError: the split's source went away" in first["error"]
    assert second["status"] == "ok" and flaky.calls == 2


def _toy_split():
    rng = np.random.default_rng(3)
    n_users, n_items = 37, 23
    user = np.repeat(np.arange(n_users), 6)
    item = np.concatenate([rng.choice(n_items, 6, replace=False) for _ in range(n_users)])
    x = Interactions(user, item, n_users, n_items)
    is_test = np.tile([False, False, False, False, True, True], n_users)
    is_test[user == 5] = False  # user 5 has no test item: excluded and counted
    return x.subset(~is_test), x.subset(is_test)


@dataclass(frozen=True)
class _TiedScores:
    table: jnp.ndarray

    def score(self, batch):
        return self.table[batch.users]


def test_results_do_not_depend_on_batch_size(registry):
    train, test = _toy_split()
    rng = np.random.default_rng(0)
    fitted = _TiedScores(jnp.asarray(rng.integers(0, 3, (37, 23)), jnp.float32))  # many ties
    metrics = [registry.metric(m) for m in ("ndcg", "recall", "mrr", "auc", "coverage")]
    results = [evaluate_ranking(fitted, train=train, test=test, metrics=metrics, ks=(1, 5, 20),
                                batch_size=b) for b in (1, 7, 256)]
    for r in results[1:]:
        assert r.metrics == results[0].metrics
        for name, values in r.per_user.items():
            np.testing.assert_array_equal(values, results[0].per_user[name])
    assert results[0].counts["users_excluded"] == 1
    assert 5 not in results[0].users


def test_evaluator_masks_seen_items_and_breaks_ties_by_index(registry):
    # 1 user, 5 items; train {0}; test {2}; all scores equal -> ranking 1, 2, 3, 4 (0 masked)
    train = Interactions([0], [0], 1, 5)
    test = Interactions([0], [2], 1, 5)
    fitted = _TiedScores(jnp.ones((1, 5), jnp.float32))
    metrics = [registry.metric(m) for m in ("mrr", "hit", "auc")]
    r = evaluate_ranking(fitted, train=train, test=test, metrics=metrics, ks=(1, 2))
    assert r.metrics["mrr@2"] == pytest.approx(0.5)
    assert r.metrics["hit@1"] == 0.0 and r.metrics["hit@2"] == 1.0
    assert r.metrics["auc"] == pytest.approx(2 / 3)  # beats items 3, 4; loses to item 1


class BadData:
    @hookimpl
    def register_datasets(self):
        from recbench import DatasetCard, DatasetSpec

        def load(cfg, ctx):
            raise OSError("disk on fire")
        def implicit(cfg, ctx):
            rng = np.random.default_rng(0)
            return Dataset.from_arrays("no-ratings", rng.integers(0, 30, 300), rng.integers(0, 20, 300))
        return [DatasetSpec("bad-data", load, DatasetCard("always fails")),
                DatasetSpec("no-ratings", implicit, DatasetCard("implicit feedback only"))]


@dataclass(frozen=True)
class _Spy:
    """most-popular-like scores; every fit is counted, ``info`` is reported as fit_info."""

    fits: list
    info: object = None

    def fit(self, train, *, valid=None, key):
        self.fits.append(key)
        return _SpyFitted(jnp.asarray(train.item_counts, jnp.float32), self.info)


@dataclass(frozen=True)
class _SpyFitted:
    popularity: jnp.ndarray
    fit_info: object

    def score(self, batch):
        return jnp.broadcast_to(self.popularity, (batch.users.shape[0], batch.n_items))


class SpyModels:
    def __init__(self):
        self.fits = []

    @hookimpl
    def register_models(self):
        return [ModelSpec("spy", "baseline", frozenset({"ranking"}),
                          lambda c, x: _Spy(self.fits, {"epochs_run": 3, "epoch_s": np.float32(0.5)})),
                ModelSpec("spy-bad-info", "baseline", frozenset({"ranking"}),
                          lambda c, x: _Spy(self.fits, {"losses": [1.0, 0.5]})),
                ModelSpec("spy-needs-users", "baseline", frozenset({"ranking"}),
                          lambda c, x: _Spy(self.fits), requires=frozenset({"user_features"}))]


def test_a_failing_dataset_stops_the_run_before_any_trial(tmp_path):
    spy = SpyModels()
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}, {"name": "bad-data"}],
        "models": [{"name": "spy"}]})
    with pytest.raises(RecbenchError, match=r"datasets\[1\]: dataset 'bad-data' could not be "
                                            r"loaded: OSError: disk on fire"):
        run(tmp_path, exp, objects=(BadData(), spy))
    assert spy.fits == [] and not (tmp_path / "results" / "trials").exists()


@pytest.mark.parametrize("change, message", [
    ({"protocol": {"metrics": ["ndcg"], "ks": [10, 41]}},
     "K=41 but dataset 'synthetic' has only 40 items"),
    ({"models": [{"name": "spy"}, {"name": "spy-needs-users"}]},
     "model 'spy-needs-users' needs user_features, which dataset 'synthetic' does not have"),
    ({"protocol": {"task": "rating", "metrics": ["rmse"]}, "models": [{"name": "random"}],
      "datasets": [{"name": "no-ratings"}]},
     "task 'rating' needs ratings; dataset 'no-ratings' has none"),
])
def test_checks_that_need_no_fitted_model_run_before_any_training(tmp_path, change, message):
    spy = SpyModels()
    exp = from_mapping(Experiment, {"datasets": [{"name": "synthetic", "config": TINY}],
                                    "models": [{"name": "spy"}], **change})
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, exp, objects=(spy, BadData()))
    assert spy.fits == []


def test_harness_times_every_model_alike_and_stores_declared_fit_info(tmp_path):
    spy = SpyModels()
    exp = from_mapping(Experiment, {"datasets": [{"name": "synthetic", "config": TINY}],
                                    "models": [{"name": "spy"}, {"name": "spy-bad-info"}],
                                    "protocol": {"metrics": ["ndcg"]}})
    ok, bad = run(tmp_path, exp, objects=(spy,))
    t = ok["timings"]
    assert {"fit_s", "fit_compile_s", "fit_steady_s", "eval_s", "eval_compile_s",
            "eval_steady_s", "score_s"} <= set(t)
    assert t["fit_steady_s"] == pytest.approx(t["fit_s"] - t["fit_compile_s"])
    assert t["eval_steady_s"] == pytest.approx(t["eval_s"] - t["eval_compile_s"])
    assert ok["fit_info"] == {"epochs_run": 3, "epoch_s": 0.5}
    assert ok["higher_is_better"] == {"ndcg@10": True}
    assert bad["status"] == "failed" and "fit_info['losses'] = [1.0, 0.5] (list)" in bad["error"]


def test_renaming_a_label_changes_no_key_and_no_number(tmp_path):
    def exp(label):
        return from_mapping(Experiment, {"datasets": [{"name": "synthetic", "config": TINY}],
                                         "models": [{"name": "random", "label": label}],
                                         "protocol": {"metrics": ["ndcg"]}})
    (a,) = run(tmp_path / "a", exp(""))
    (b,) = run(tmp_path / "b", exp("renamed"))
    assert b["model"] == "renamed" and a["key"] == b["key"] and a["metrics"] == b["metrics"]


def test_the_same_model_twice_under_two_labels_is_a_config_error(tmp_path):
    exp = from_mapping(Experiment, {"datasets": [{"name": "synthetic", "config": TINY}],
                                    "models": [{"name": "random"}, {"name": "random", "label": "r2"}]})
    with pytest.raises(ConfigError, match=r"models\[1\]: model 'random' with this config is "
                                          r"already models\[0\]"):
        run(tmp_path, exp)


def test_leaderboard_never_averages_different_setups_or_datasets(tmp_path):
    from recbench.report import leaderboard

    def exp(ratios):
        return from_mapping(Experiment, {
            "datasets": [{"name": "synthetic", "config": TINY},
                         {"name": "synthetic", "label": "flat", "config": {**TINY, "popularity": 0.0}}],
            "models": [{"name": "most-popular"}],
            "protocol": {"split": {"name": "ratio", "config": {"ratios": ratios}}}})

    first = run(tmp_path, exp([0.8, 0.1, 0.1]))
    assert [r["dataset"] for r in first] == ["synthetic", "flat"]
    run(tmp_path, exp([0.5, 0.1, 0.4]))  # same results directory, another split
    records = list(ResultStore(tmp_path / "results").records())
    board = leaderboard(records)
    assert len(board) == 4 and (board["seeds"] == 1).all()
    assert board["model"].str.startswith("most-popular [").all()


def test_auc_ignores_masked_test_items_and_exclusions_are_counted(registry):
    # user 0: train {0, 1}, test {1, 5}; item 5 ranked first among candidates -> perfect AUC.
    # user 1 has only test items (cold), user 2 only training items (excluded, counted).
    train = Interactions([0, 0, 2], [0, 1, 3], 3, 8)
    test = Interactions([0, 0, 1], [1, 5, 2], 3, 8)
    scores = jnp.asarray(np.tile(np.arange(8)[::-1], (3, 1)).astype(np.float32))
    scores = scores.at[0, 5].set(100.0)
    metrics = [registry.metric(m) for m in ("auc", "recall")]
    r = evaluate_ranking(_TiedScores(scores), train=train, test=test, metrics=metrics, ks=(1,))
    assert r.per_user["auc"][0] == 1.0
    assert r.counts["users_evaluated"] == 2 and r.counts["users_excluded"] == 1


def test_leaderboard_sorts_by_each_metrics_declared_direction_and_shows_users():
    from recbench.report import leaderboard

    def record(model, value, higher):
        return {"status": "ok", "dataset": "d", "model": model, "seed": 0, "identity": {"m": model},
                "metrics": {"popularity-bias@10": value}, "timings": {"fit_s": 1.0, "eval_s": 0.1},
                "higher_is_better": {"popularity-bias@10": higher},
                "counts": {"users_evaluated": 90, "users_excluded": 3}}

    lower = leaderboard([record("a", 0.9, False), record("b", 0.1, False)])
    assert list(lower["model"]) == ["b", "a"]  # a third party's lower-is-better metric
    higher = leaderboard([record("a", 0.1, True), record("b", 0.9, True)])
    assert list(higher["model"]) == ["b", "a"]
    assert list(higher["users_evaluated"]) == [90, 90] and list(higher["users_excluded"]) == [3, 3]


def test_each_dataset_is_loaded_once_per_check_and_unmet_models_can_be_skipped(tmp_path):
    loads = []

    class Counted:
        @hookimpl
        def register_datasets(self):
            from recbench import DatasetCard, DatasetSpec

            def load(cfg, ctx):
                loads.append(cfg)
                rng = np.random.default_rng(0)
                return Dataset.from_arrays("counted", rng.integers(0, 30, 300),
                                           rng.integers(0, 20, 300))
            return [DatasetSpec("counted", load, DatasetCard("counts its loads"))]

    spy = SpyModels()
    exp = from_mapping(Experiment, {"datasets": [{"name": "counted"}], "seeds": [0, 1],
                                    "models": [{"name": "spy"}, {"name": "spy-needs-users"}],
                                    "protocol": {"metrics": ["ndcg"], "ks": [5]}})
    reg = Registry.build(load_plugins(allow=set(), objects=(Counted(), spy)))
    runner = Runner(exp, reg, RunOptions(tmp_path / "r", unmet_requirements="skip"))
    records = runner.run()
    assert len(loads) == 1  # checked and run on one load
    assert [(r["model"], r["status"]) for r in records] == [("spy", "ok")] * 2
    assert runner.skipped == ["model 'spy-needs-users' needs user_features, which dataset "
                              "'counted' does not have"]
    assert len(spy.fits) == 2


def test_folds_split_each_seed_into_one_partition_and_average_in_the_leaderboard(registry, tmp_path):
    from recbench.report import leaderboard

    exp = experiment(folds=[0, 1, 2], split={"name": "kfold", "config": {"k": 3}})
    runner = Runner(exp, registry, RunOptions(tmp_path / "r"))
    ds = runner.load_dataset(runner.plan_.datasets[0])
    tests = [runner.make_split(ds, 0, fold).test for fold in (0, 1, 2)]
    pairs = [set(zip(t.user.tolist(), t.item.tolist())) for t in tests]
    assert not (pairs[0] & pairs[1]) and not (pairs[0] & pairs[2]) and not (pairs[1] & pairs[2])
    assert sum(map(len, pairs)) == len(ds.interactions)  # the folds of seed 0 cover every row
    records = runner.run()
    assert sorted((r["seed"], r["fold"]) for r in records if r["model"] == "random") == [
        (s, f) for s in (0, 1) for f in (0, 1, 2)]
    assert all(r["identity"]["fold"] == r["fold"] for r in records)
    board = leaderboard(records)
    assert list(board["seeds"]) == [2, 2] and list(board["folds"]) == [3, 3]  # one row per model
    assert list(board["runs"]) == [6, 6]


def test_fold_templates_fill_given_file_names_and_keys_without_folds_have_no_fold():
    from recbench.runner import fold_config

    assert fold_config({"train": "u{fold}.base", "test": "u{fold}.test"}, 3) == {
        "train": "u3.base", "test": "u3.test"}
    assert fold_config({"k": 5, "fold": 0}, 2) == {"k": 5, "fold": 2}
    with pytest.raises(ConfigError, match="folds must be distinct"):
        experiment(folds=[1, 1])


def test_a_trial_without_folds_has_no_fold_in_its_identity(registry, tmp_path):
    records = Runner(experiment(), registry, RunOptions(tmp_path / "r")).run()
    assert all("fold" not in r and "fold" not in r["identity"] for r in records)
    assert all("folds" not in r["identity"]["protocol"] for r in records)
