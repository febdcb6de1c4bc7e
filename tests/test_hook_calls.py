"""One test named for each hook, exercising it through the plugin manager and the runner.

tests/test_hooks_documented.py requires a test function named for every hook that also uses it;
the detailed lifecycle behaviour (errors, resume, arguments) is in tests/test_lifecycle_hooks.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recbench.api import (
    Dataset,
    DatasetCard,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    Split,
    SplitterSpec,
    hookimpl,
)
from recbench.config import Component, Experiment, Protocol
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner


@dataclass(frozen=True)
class _Scores:
    def score(self, batch):
        import jax.numpy as jnp

        return jnp.zeros((len(batch.users), batch.n_items), jnp.float32)


class _Model:
    def fit(self, train, *, valid=None, key):
        return _Scores()


def _dataset(config, context) -> Dataset:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(12), 6)
    items = np.concatenate([rng.choice(20, 6, replace=False) for _ in range(12)])
    return Dataset.from_arrays("hook-calls-data", users, items)


def _first_half(x, config, rng) -> Split:
    test = np.arange(len(x)) % 3 == 0
    return Split(train=x.subset(np.flatnonzero(~test)), test=x.subset(np.flatnonzero(test)))


class Plugin:
    """Implements every hook and records each call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def register_models(self):
        self.calls.append("register_models")
        return [ModelSpec("hook-calls-model", "baseline", {"ranking"}, lambda c, x: _Model())]

    @hookimpl
    def register_datasets(self):
        self.calls.append("register_datasets")
        return [DatasetSpec("hook-calls-data", _dataset, DatasetCard("12 users x 20 items"))]

    @hookimpl
    def register_metrics(self):
        self.calls.append("register_metrics")
        return [MetricSpec("hook-calls-hits", "ranking", True,
                           lambda ctx, k: ctx.hits[:, :k].sum(axis=1).astype(np.float64))]

    @hookimpl
    def register_splitters(self):
        self.calls.append("register_splitters")
        return [SplitterSpec("hook-calls-split", _first_half)]

    @hookimpl
    def run_started(self, experiment, trials):
        self.calls.append("run_started")
        self.trials = list(trials)

    @hookimpl
    def trial_finished(self, record):
        self.calls.append("trial_finished")

    @hookimpl
    def run_finished(self, experiment, records):
        self.calls.append("run_finished")
        self.records = list(records)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Plugin, Registry, list]:
    plugin = Plugin()
    registry = Registry.build(load_plugins(allow=set(), objects=(plugin,)))
    experiment = Experiment(
        name="hook-calls", datasets=(Component("hook-calls-data"),),
        models=(Component("hook-calls-model"),), seeds=(0, 1),
        protocol=Protocol(split=Component("hook-calls-split"),
                          metrics=("hook-calls-hits",), ks=(3,)))
    runner = Runner(experiment, registry,
                    RunOptions(results_dir=tmp_path_factory.mktemp("hook-calls")))
    records = runner.run()
    assert runner.hook_errors == []
    return plugin, registry, records


def test_register_models_is_called_once_and_registers(ran):
    plugin, registry, _ = ran
    assert plugin.calls.count("register_models") == 1
    assert registry.get("model", "hook-calls-model").spec.family == "baseline"


def test_register_datasets_is_called_once_and_registers(ran):
    plugin, registry, records = ran
    assert plugin.calls.count("register_datasets") == 1
    assert registry.get("dataset", "hook-calls-data").spec.card.description
    assert all(r["dataset"] == "hook-calls-data" for r in records)


def test_register_metrics_is_called_once_and_its_metric_is_computed(ran):
    plugin, registry, records = ran
    assert plugin.calls.count("register_metrics") == 1
    assert registry.get("metric", "hook-calls-hits").spec.task == "ranking"
    assert all(0 <= r["metrics"]["hook-calls-hits@3"] <= 3 for r in records)


def test_register_splitters_is_called_once_and_its_split_is_used(ran):
    plugin, registry, records = ran
    assert plugin.calls.count("register_splitters") == 1
    assert registry.get("splitter", "hook-calls-split").spec.takes_dataset is False
    assert all(r["status"] == "ok" for r in records)


def test_run_started_comes_first_with_every_planned_trial(ran):
    plugin, _, records = ran
    lifecycle = [c for c in plugin.calls if not c.startswith("register_")]
    assert lifecycle[0] == "run_started" and lifecycle.count("run_started") == 1
    assert [t.seed for t in plugin.trials] == [0, 1]


def test_trial_finished_once_per_trial_between_start_and_finish(ran):
    plugin, _, records = ran
    lifecycle = [c for c in plugin.calls if not c.startswith("register_")]
    assert lifecycle[1:-1] == ["trial_finished"] * len(records) == ["trial_finished"] * 2


def test_run_finished_comes_last_with_every_record(ran):
    plugin, _, records = ran
    assert plugin.calls[-1] == "run_finished" and plugin.calls.count("run_finished") == 1
    assert [r["key"] for r in plugin.records] == [r["key"] for r in records]
