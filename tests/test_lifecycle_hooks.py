"""Lifecycle hooks (run_started, trial_finished, run_finished): when they fire, with what arguments,
and that a tracker which raises is recorded as a warning without stopping the run."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


from recbench import ModelSpec, hookimpl
from recbench.cli.main import main
from recbench.config import Component, Experiment, Protocol
from recbench.plugins import load_plugins
from recbench.records import PlannedTrial
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.store import ResultStore

TINY = {"n_users": 60, "n_items": 30, "mean_per_user": 8}
TRIAL_FIELDS = {"key", "dataset", "model", "seed", "fold", "stored", "identity"}


def experiment(*models: Component) -> Experiment:
    return Experiment(
        name="lifecycle",
        datasets=(Component("synthetic", TINY),),
        models=models or (Component("random"), Component("most-popular", label="pop")),
        seeds=(0, 1),
        protocol=Protocol(metrics=("ndcg", "recall"), ks=(5,)))


class Tracker:
    """Records every lifecycle call (deep copies, so later mutation by anyone would show)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def run_started(self, experiment, trials):
        self.calls.append(("run_started", {"experiment": experiment,
                                           "trials": copy.deepcopy(trials)}))

    @hookimpl
    def trial_finished(self, record):
        self.calls.append(("trial_finished", {"record": copy.deepcopy(record)}))

    @hookimpl
    def run_finished(self, experiment, records):
        self.calls.append(("run_finished", {"experiment": experiment,
                                            "records": copy.deepcopy(records)}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args(self, hook: str) -> list[dict]:
        return [kwargs for name, kwargs in self.calls if name == hook]


class Raising:
    @hookimpl
    def run_started(self, experiment, trials):
        raise RuntimeError("tracker offline")

    @hookimpl
    def trial_finished(self, record):
        raise ValueError(f"cannot log {record['model']}")

    @hookimpl
    def run_finished(self, experiment, records):
        raise KeyError("summary")


@dataclass(frozen=True)
class _FailsToFit:
    def fit(self, train, *, valid=None, key):
        raise FloatingPointError("diverged")


class FailingModel:
    @hookimpl
    def register_models(self):
        return [ModelSpec("fails-to-fit", "baseline", frozenset({"ranking"}),
                          lambda cfg, ctx: _FailsToFit())]


def make_runner(tmp_path: Path, exp: Experiment, *plugins) -> Runner:
    registry = Registry.build(load_plugins(objects=plugins, allow=set()))
    return Runner(exp, registry, RunOptions(results_dir=tmp_path / "results"))


def test_hooks_fire_in_order_with_the_documented_arguments(tmp_path):
    tracker = Tracker()
    exp = experiment()
    runner = make_runner(tmp_path, exp, tracker)
    returned = runner.run()

    assert tracker.names() == ["run_started"] + ["trial_finished"] * 4 + ["run_finished"]
    assert runner.hook_errors == []

    # run_started: the experiment object and every planned trial (typed), none stored yet.
    (started,) = tracker.args("run_started")
    assert started["experiment"] is exp
    trials = started["trials"]
    assert all(isinstance(t, PlannedTrial) for t in trials)
    assert {f.name for f in dataclasses.fields(PlannedTrial)} == TRIAL_FIELDS
    assert [(t.dataset, t.model, t.seed) for t in trials] == [
        ("synthetic", "random", 0), ("synthetic", "pop", 0),
        ("synthetic", "random", 1), ("synthetic", "pop", 1)]  # labels, in run order
    assert not any(t.stored for t in trials)
    assert len({t.key for t in trials}) == 4
    assert all(t.identity["model"]["name"] in ("random", "most-popular") for t in trials)

    # trial_finished: each record exactly as written to the store, in run order.
    store = ResultStore(tmp_path / "results")
    finished = [a["record"] for a in tracker.args("trial_finished")]
    assert [r["key"] for r in finished] == [t.key for t in trials]
    for record in finished:
        assert record["status"] == "ok"
        assert set(record["metrics"]) == {"ndcg@5", "recall@5"}
        assert json.loads(json.dumps(record)) == store.get(record["key"])

    # run_finished: the experiment and one record per planned trial, in the same order.
    (done,) = tracker.args("run_finished")
    assert done["experiment"] is exp
    assert [r["key"] for r in done["records"]] == [t.key for t in trials]
    assert done["records"] == [store.get(t.key) for t in trials]
    assert done["records"] == returned


def test_resumed_run_reports_stored_trials_and_skips_trial_finished(tmp_path):
    make_runner(tmp_path, experiment()).run()
    tracker = Tracker()
    make_runner(tmp_path, experiment(), tracker).run()
    assert tracker.names() == ["run_started", "run_finished"]
    assert all(t.stored for t in tracker.args("run_started")[0]["trials"])
    assert [r["status"] for r in tracker.args("run_finished")[0]["records"]] == ["ok"] * 4


def test_failed_trials_reach_the_hooks(tmp_path):
    tracker = Tracker()
    exp = experiment(Component("random"), Component("fails-to-fit"))
    runner = make_runner(tmp_path, exp, FailingModel(), tracker)
    runner.run()
    finished = {(a["record"]["model"], a["record"]["seed"]): a["record"]
                for a in tracker.args("trial_finished")}
    assert len(finished) == 4
    failed = finished[("fails-to-fit", 0)]
    assert failed["status"] == "failed" and "FloatingPointError: diverged" in failed["error"]
    assert finished[("random", 1)]["status"] == "ok"
    statuses = [r["status"] for r in tracker.args("run_finished")[0]["records"]]
    assert statuses == ["ok", "failed", "ok", "failed"]


class RaisingToo(Raising):
    pass


def test_a_raising_lifecycle_hook_is_a_warning_and_the_run_goes_on(tmp_path):
    tracker = Tracker()
    # Raising plugins on both sides of the tracker: whatever the calling order, the tracker must
    # still see every call.
    runner = make_runner(tmp_path, experiment(), Raising(), tracker, RaisingToo())
    records = runner.run()

    assert [r["status"] for r in records] == ["ok"] * 4
    assert len(list(ResultStore(tmp_path / "results").records())) == 4
    assert tracker.names() == ["run_started"] + ["trial_finished"] * 4 + ["run_finished"]
    for plugin in ("Raising", "RaisingToo"):
        errors = [e for e in runner.hook_errors if e.startswith(f"plugin {plugin}: ")]
        assert len(errors) == 1 + 4 + 1, runner.hook_errors
        assert errors[0] == f"plugin {plugin}: run_started raised RuntimeError: tracker offline"
        assert all(e.startswith(f"plugin {plugin}: trial_finished raised ValueError: cannot log ")
                   for e in errors[1:5])
        assert errors[5].startswith(f"plugin {plugin}: run_finished raised KeyError")
    assert len(runner.hook_errors) == 12


def test_cli_prints_hook_errors_as_warnings(tmp_path, monkeypatch, capsys):
    plugin = tmp_path / "flaky_tracker.py"
    plugin.write_text(
        "from recbench import hookimpl\n\n"
        "@hookimpl\n"
        "def run_finished(experiment, records):\n"
        "    raise ConnectionError('tracking server unreachable')\n")
    config = tmp_path / "exp.toml"
    config.write_text(
        'name = "flaky"\n'
        '[[datasets]]\nname = "synthetic"\n'
        'config = {n_users = 60, n_items = 30, mean_per_user = 8}\n'
        '[[models]]\nname = "most-popular"\n'
        '[protocol]\nmetrics = ["ndcg"]\nks = [5]\n')
    monkeypatch.setenv("RECBENCH_LOAD_PLUGINS", "")
    code = main(["--plugin", str(plugin), "run", str(config), "--results", str(tmp_path / "res"),
                 "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert ("warning: plugin flaky_tracker: run_finished raised ConnectionError: "
            "tracking server unreachable") in out.err
    assert [row["model"] for row in json.loads(out.out)] == ["most-popular"]


class SubsetArguments:
    """pluggy lets an implementation declare a subset of the hook's arguments."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @hookimpl
    def run_finished(self, records):
        self.seen.append(len(records))


def test_an_implementation_may_take_a_subset_of_the_arguments(tmp_path):
    plugin = SubsetArguments()
    runner = make_runner(tmp_path, experiment(Component("random")), plugin)
    runner.run()
    assert runner.hook_errors == []
    assert plugin.seen == [2]
