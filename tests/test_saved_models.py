"""Saved models: `run --save-models` writes each fitted model's state beside its trial; a stored
trial is then re-evaluated or serves recommendations without retraining, and a damaged model
file is caught, set aside and recomputed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import numpy as np
import pytest

from recbench import ModelSpec, hookimpl, modelstate
from recbench.cli.main import main
from recbench.config import Experiment, from_mapping
from recbench.datacache import default_cache_dir
from recbench.errors import ModelError
from recbench.evaluate import evaluate_ranking
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.serve import recommend, restore_trial
from recbench.store import ResultStore, StoreError


@dataclass(frozen=True)
class _Unsavable:
    def fit(self, train, *, valid=None, key):
        return _UnsavableFitted()


class _UnsavableFitted:
    def score(self, batch):
        import jax.numpy as jnp
        return jnp.zeros((batch.users.shape[0], batch.n_items), jnp.float32)


class Unsavable:
    @hookimpl
    def register_models(self):
        return [ModelSpec("unsavable", "baseline", frozenset({"ranking"}), lambda c, x: _Unsavable())]


REG = Registry.build(load_plugins(allow=set(), objects=(Unsavable(),)))
EXPERIMENT = {
    "datasets": [{"name": "synthetic", "config": {"n_users": 60, "n_items": 30,
                                                  "mean_per_user": 8}}],
    "models": [{"name": "most-popular"}, {"name": "bpr", "config": {"epochs": 3}},
               {"name": "item-knn"}, {"name": "unsavable"}],
    "protocol": {"metrics": ["ndcg", "recall"], "ks": [5]}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    Runner(from_mapping(Experiment, EXPERIMENT), REG, RunOptions(root, save_models=True)).run()
    return root


def _key(root, model):
    return next(r["key"] for r in ResultStore(root).records() if r["model"] == model)


@pytest.mark.parametrize("model", ["most-popular", "bpr", "item-knn"])
def test_a_restored_trial_reproduces_its_stored_metrics_without_training(store, model):
    t = restore_trial(store, _key(store, model), REG, data_dir=None, cache_dir=default_cache_dir())
    again = evaluate_ranking(t.fitted, train=t.history, test=t.split.test, known=t.known,
                             metrics=[REG.metric(m) for m in ("ndcg", "recall")], ks=(5,),
                             candidates=t.candidates)
    assert again.metrics == t.record["metrics"]


def test_saved_states_keep_every_dtype():
    state = {"w": np.arange(3, dtype=np.float32), "big": np.array([2**40], np.int64),
             "key": jax.random.key(3), "nested": [{"n": 2, "s": "x"}]}
    back = modelstate.decode(modelstate.encode(state))
    assert back["big"][0] == 2**40 and back["w"].dtype == np.float32
    assert np.array_equal(jax.random.key_data(back["key"]), jax.random.key_data(state["key"]))
    assert back["nested"] == [{"n": 2, "s": "x"}]
    with pytest.raises(ModelError, match="cannot be read"):
        modelstate.decode(b"not msgpack")


def test_a_model_that_cannot_be_saved_says_why_and_the_run_goes_on(store):
    record = ResultStore(store).get(_key(store, "unsavable"))
    assert record["status"] == "ok" and "cannot be saved" in record["saved_model"]["error"]
    with pytest.raises(StoreError, match="has no saved model: model 'unsavable' cannot be saved"):
        restore_trial(store, record["key"], REG, data_dir=None, cache_dir=default_cache_dir())


def test_recommend_lists_unseen_items_best_first(store, capsys):
    t = restore_trial(store, _key(store, "bpr")[:10], REG, data_dir=None,  # a key prefix
                      cache_dir=default_cache_dir())
    user = int(t.split.test.user[0])
    rows = recommend(t, user, 7)
    seen = set(t.known.item[t.known.user == user].tolist())
    items = [int(r["item"]) for r in rows]  # synthetic ids are the indices
    assert len(rows) == 7 and not seen & set(items)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    test = set(t.split.test.item[t.split.test.user == user].tolist())
    assert [r["in_test"] for r in rows] == [i in test for i in items]

    assert main(["recommend", str(store), "--trial", t.record["key"], "--user",
                 str(t.dataset.user_ids[user]), "-k", "3", "--format", "json"]) == 0
    assert [r["item"] for r in json.loads(capsys.readouterr().out)] == [r["item"] for r in rows[:3]]
    assert main(["recommend", str(store), "--trial", "nosuchkey", "--user", "0"]) == 1
    assert "no stored trial 'nosuchkey'" in capsys.readouterr().err


def test_a_damaged_model_file_is_set_aside_with_its_trial_and_recomputed(tmp_path):
    exp = from_mapping(Experiment, {**EXPERIMENT, "models": [{"name": "most-popular"}]})
    Runner(exp, REG, RunOptions(tmp_path, save_models=True)).run()
    s = ResultStore(tmp_path)
    key = _key(tmp_path, "most-popular")
    path = s.models / s.get(key)["saved_model"]["file"]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(StoreError, match="does not match the sha256 in its record; the trial was "
                                         "moved to .*quarantine"):
        restore_trial(tmp_path, key, REG, data_dir=None, cache_dir=default_cache_dir())
    assert not path.exists() and len(list(s.quarantine.iterdir())) == 3  # record, npz, model
    assert not ResultStore(tmp_path).has(key)
    records = Runner(exp, REG, RunOptions(tmp_path, save_models=True)).run()
    assert records[0]["key"] == key and "file" in records[0]["saved_model"]
    fitted = restore_trial(tmp_path, key, REG, data_dir=None, cache_dir=default_cache_dir()).fitted
    assert np.isfinite(np.asarray(fitted.popularity)).all()
