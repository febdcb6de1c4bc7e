"""protocol.tuning and a model's search grid: choose on validation data, refit, one test score."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest

from recbench import ModelSpec, hookimpl
from recbench.config import Experiment, from_mapping
from recbench.errors import ConfigError, ModelError
from recbench.datacache import default_cache_dir
from recbench.evaluate import evaluate_ranking
from recbench.serve import restore_trial
from recbench.plugins import load_plugins
from recbench.records import schema_problems
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner

TINY = {"n_users": 80, "n_items": 40, "mean_per_user": 10}


@dataclass(frozen=True)
class EpochConfig:
    epochs: int = 7
    stop_at: int = 3  # the epoch "early stopping" reports as best when given a validation part
    weight: float = 1.0  # searched: only weight 2.0 ranks by popularity (the others reversed)
    fail: bool = False  # searched: this setting's fit fails, as a diverging learning rate would


@dataclass(frozen=True)
class _Fitted:
    counts: object
    weight: float
    fit_info: dict

    def score(self, batch):
        sign = 1.0 if self.weight == 2.0 else -1.0
        return jnp.broadcast_to(sign * self.counts, (batch.users.shape[0], self.counts.shape[0]))


@dataclass(frozen=True)
class _EpochModel:
    """Popularity that reports what it was fitted on, so the tests see what tuning passed it."""

    cfg: EpochConfig

    def fit(self, train, *, valid=None, key):
        if self.cfg.fail:
            raise ModelError("training diverged: the mean loss of epoch 2 is nan")
        info = {"epochs_trained": self.cfg.stop_at if valid is not None else self.cfg.epochs,
                "rows": len(train)}
        if valid is not None:
            info["best_epoch"] = self.cfg.stop_at
        counts = jnp.asarray(np.bincount(train.item, minlength=train.n_items), jnp.float32)
        return _Fitted(counts, self.cfg.weight, info)


class EpochModels:
    @hookimpl
    def register_models(self):
        return [ModelSpec("epoch-pop", "baseline", frozenset({"ranking"}),
                          lambda c, x: _EpochModel(c), config=EpochConfig)]


REG = Registry.build(load_plugins(allow=set(), objects=[EpochModels()]))


def run(tmp_path, models, protocol, seeds=(0,), **options):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}], "models": models,
        "seeds": list(seeds), "protocol": {"metrics": ["ndcg", "recall"], "ks": [10], **protocol}})
    return Runner(exp, REG, RunOptions(tmp_path / "results", **options)).run()


def test_search_chooses_on_validation_and_tests_the_chosen_setting(tmp_path):
    [tuned] = run(tmp_path / "a", [{"name": "ease", "search": {"l2": [1.0, 50.0, 5000.0]}}], {})
    t = tuned["tuning"]
    assert t["metric"] == "ndcg@10" and [x["config"]["l2"] for x in t["tried"]] == [1, 50, 5000]
    best = max(t["tried"], key=lambda x: x["score"])
    assert t["chosen"] == best["config"]
    # The tested model is the chosen setting fitted as a plain run fits it: same test numbers.
    [plain] = run(tmp_path / "b", [{"name": "ease", "config": {"l2": t["chosen"]["l2"]}}], {})
    assert tuned["metrics"] == plain["metrics"]
    assert "tuning" not in plain and "search" not in plain["identity"]["model"]
    assert tuned["identity"]["model"]["search"] == {"l2": [1.0, 50.0, 5000.0]}
    assert not schema_problems(tuned)


def test_a_grid_point_that_ranks_worse_on_validation_is_not_chosen(tmp_path):
    [r] = run(tmp_path, [{"name": "epoch-pop", "search": {"weight": [1.0, 2.0, 3.0]}}], {})
    assert r["tuning"]["chosen"]["weight"] == 2.0
    scores = [x["score"] for x in r["tuning"]["tried"]]
    assert scores[1] > scores[0] and scores[1] > scores[2]


def test_refit_on_an_inner_share_uses_the_epoch_count_early_stopping_chose(tmp_path):
    protocol = {"split": {"name": "ratio", "config": {"ratios": [0.8, 0.2]}},
                "tuning": {"split": {"name": "ratio", "config": {"ratios": [0.9, 0.1]}},
                           "refit": True}}
    [r] = run(tmp_path, [{"name": "epoch-pop"}], protocol)
    assert r["status"] == "ok", r.get("error")
    t = r["tuning"]
    assert t["refit"] and t["refit_epochs"] == 3 and t["tried"][0]["best_epoch"] == 3
    assert r["fit_info"]["epochs_trained"] == 3  # the refit ran the chosen count, no validation
    # ... on the whole training part, and only on that: the test part stays unseen.
    assert r["fit_info"]["rows"] == r["provenance"]["data_shape"]["train"]
    assert not schema_problems(r)


def test_without_refit_the_model_fitted_on_the_inner_share_is_tested(tmp_path):
    protocol = {"split": {"name": "ratio", "config": {"ratios": [0.8, 0.2]}},
                "tuning": {"split": {"name": "ratio", "config": {"ratios": [0.9, 0.1]}}}}
    [r] = run(tmp_path, [{"name": "epoch-pop"}], protocol)
    assert r["fit_info"]["rows"] < r["provenance"]["data_shape"]["train"]
    assert "refit_epochs" not in r["tuning"]


def test_tuning_keys_leave_untuned_trials_alone(tmp_path):
    [a] = run(tmp_path / "a", [{"name": "most-popular"}], {})
    [b] = run(tmp_path / "b", [{"name": "most-popular"}], {"tuning": {}})
    assert a["key"] == b["key"] and "tuning" not in a["identity"]["protocol"]
    [c] = run(tmp_path / "c", [{"name": "most-popular"}], {"tuning": {"refit": True}})
    assert c["key"] != a["key"]


def test_bad_tuning_input_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.search.*unknown key 'l3'"):
        run(tmp_path, [{"name": "ease", "search": {"l3": [1.0]}}], {})
    with pytest.raises(ConfigError, match="search.l2 must be a non-empty list"):
        run(tmp_path, [{"name": "ease", "search": {"l2": []}}], {})
    with pytest.raises(ConfigError, match="reads the whole dataset"):
        run(tmp_path, [{"name": "ease"}], {"tuning": {"split": {
            "name": "given", "config": {"train": "a.tsv", "test": "b.tsv"}}}})
    with pytest.raises(ConfigError, match="tuning.metric: 'ndcg@20' is not computed"):
        run(tmp_path, [{"name": "ease"}], {"tuning": {"metric": "ndcg@20", "refit": True}})
    # A split without a validation part and no tuning.split: the trial fails, saying what to set.
    [r] = run(tmp_path, [{"name": "ease", "search": {"l2": [1.0, 2.0]}}],
              {"split": {"name": "ratio", "config": {"ratios": [0.8, 0.2]}}})
    assert r["status"] == "failed" and "set protocol.tuning.split" in r["error"]


def test_a_failing_setting_is_recorded_and_never_chosen(tmp_path):
    [r] = run(tmp_path / "a", [{"name": "epoch-pop", "config": {"weight": 2.0},
                                "search": {"fail": [True, False]}}], {})
    assert r["status"] == "ok" and r["tuning"]["chosen"]["fail"] is False
    failed = r["tuning"]["tried"][0]
    assert failed["score"] is None and "diverged" in failed["error"]
    [r] = run(tmp_path / "b", [{"name": "epoch-pop", "search": {"fail": [True]}}], {})
    assert r["status"] == "failed" and "diverged" in r["error"]


def test_a_saved_tuned_trial_restores_the_tested_model(tmp_path):
    protocol = {"split": {"name": "ratio", "config": {"ratios": [0.8, 0.2]}},
                "tuning": {"split": {"name": "ratio", "config": {"ratios": [0.9, 0.1]}},
                           "refit": True}}
    [r] = run(tmp_path, [{"name": "ease", "search": {"l2": [1.0, 5000.0]}}], protocol,
              save_models=True)
    t = restore_trial(tmp_path / "results", r["key"], REG, data_dir=None,
                      cache_dir=default_cache_dir())
    assert t.history.fingerprint == t.split.train.fingerprint  # refit: the whole training part
    again = evaluate_ranking(t.fitted, train=t.history, test=t.split.test, known=t.known,
                             metrics=[REG.metric(m) for m in ("ndcg", "recall")],
                             ks=(10,), candidates=t.candidates)
    assert again.metrics == r["metrics"]
