"""The trial record: the TypedDict schema, docs/trial-record.md and real records agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from recbench import ModelSpec, hookimpl
from recbench.config import Experiment, from_mapping
from recbench.plugins import load_plugins
from recbench.records import key_paths, schema_problems
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.store import ResultStore

DOC = Path(__file__).resolve().parents[1] / "docs" / "trial-record.md"


def documented_keys() -> set[str]:
    rows = re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), flags=re.M)
    return {r for r in rows if not r.startswith("fit_info.")}  # fit_info's keys are the model's


def test_every_schema_key_is_documented_and_every_documented_key_is_in_the_schema():
    schema = set(key_paths())
    assert not schema - documented_keys(), f"undocumented in {DOC.name}: {sorted(schema - documented_keys())}"
    assert not documented_keys() - schema, f"documented but not in the schema: {sorted(documented_keys() - schema)}"


@dataclass(frozen=True)
class _Constant:
    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        import jax.numpy as jnp
        return jnp.zeros((batch.users.shape[0], batch.n_items), jnp.float32)


@dataclass(frozen=True)
class _Fails:
    def fit(self, train, *, valid=None, key):
        raise FloatingPointError("diverged")


class Failing:
    @hookimpl
    def register_models(self):
        return [ModelSpec("fails", "baseline", frozenset({"ranking"}), lambda c, x: _Fails()),
                # a model of two families: the record lists both
                ModelSpec("popular-twice", "baseline", frozenset({"ranking"}),
                          lambda c, x: _Constant(), families=("content",))]


def test_records_written_by_a_real_run_match_the_schema(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 50, "n_items": 25,
                                                      "mean_per_user": 8}}],
        "models": [{"name": "most-popular"}, {"name": "fails"}, {"name": "popular-twice"}],
        "protocol": {"metrics": ["ndcg", "auc"], "ks": [5]}})
    reg = Registry.build(load_plugins(allow=set(), objects=(Failing(),)))
    records = Runner(exp, reg, RunOptions(tmp_path / "r", save_models=True)).run()
    assert [r["status"] for r in records] == ["ok", "failed", "ok"]
    assert "families" not in records[0] and records[2]["families"] == ["baseline", "content"]
    assert records[0]["saved_model"]["file"].startswith(records[0]["key"])
    stored = list(ResultStore(tmp_path / "r").records(include_failed=True))
    assert len(stored) == 3
    for record in [*records, *stored]:
        assert schema_problems(record) == [], record["status"]


def test_schema_check_finds_missing_unknown_and_mistyped_keys():
    record = {"key": "k", "dataset": "d", "model": "m", "seed": 0, "status": "ok"}
    assert "record.metrics: missing (status 'ok')" in schema_problems(record)
    assert schema_problems({**record, "status": "missing"}) == []
    assert schema_problems({**record, "status": "missing", "colour": 1}) == [
        "record.colour: not in the schema (TrialRecord)"]
    bad = schema_problems({**record, "status": "missing", "seed": "0", "timings": {"fit_s": 1.0}})
    assert "record.seed: expected int, got '0'" in bad
    assert "record.timings.fit_compile_s: missing" in bad
    with pytest.raises(AssertionError):
        assert schema_problems({**record, "status": "missing", "fit_info": {"x": [1]}}) == []
