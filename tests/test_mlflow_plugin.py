"""The MLflow tracker plugin (plugins/recbench-mlflow), pip-installed offline as a third party
would, found through its entry point, and run through recbench's lifecycle hooks against a local
MLflow file store: every trial's params, metrics, timings and record reach MLflow, failures too.

Needs MLflow's client (``mlflow-skinny``, in the ``test`` extra); skipped with that reason where it
is not installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from recbench import ModelSpec, hookimpl
from recbench.config import Component, Experiment, Protocol
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.store import ResultStore

mlflow = pytest.importorskip("mlflow", reason="MLflow's client is not installed (pip install "
                                              "mlflow-skinny, part of recbench's `test` extra)")

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "recbench-mlflow"
DIST = "recbench-mlflow"


@dataclass(frozen=True)
class _Diverges:
    def fit(self, train, *, valid=None, key):
        raise FloatingPointError("loss is NaN")


class Diverging:
    @hookimpl
    def register_models(self):
        return [ModelSpec("diverges", "baseline", frozenset({"ranking"}),
                          lambda cfg, ctx: _Diverges())]


@pytest.fixture(scope="module")
def installed(install_offline) -> Path:
    target = install_offline(PLUGIN)
    assert (target / "recbench_mlflow.py").is_file()
    return target


def test_every_trial_is_logged_to_a_local_mlflow_store(installed, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))  # also invalidates the import caches
    store_uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for an opt-in to files
    monkeypatch.delenv("RECBENCH_MLFLOW_EXPERIMENT", raising=False)

    host = load_plugins(objects=(Diverging(),), allow={DIST})
    [info] = [p for p in host.plugins if p.distribution == DIST]
    assert (info.name, info.source, info.error) == ("mlflow", "entry-point", None)
    assert info.hooks == ["run_finished", "run_started", "trial_finished"]
    exp = Experiment(
        name="tracked", datasets=(Component("synthetic", {
            "n_users": 60, "n_items": 30, "mean_per_user": 8}),),
        models=(Component("most-popular", label="pop"), Component("diverges")), seeds=(0, 1),
        protocol=Protocol(metrics=("ndcg", "recall"), ks=(5,)))
    results = tmp_path / "results"
    registry = Registry.build(host)
    runner = Runner(exp, registry, RunOptions(results_dir=results))
    records = runner.run()
    assert runner.hook_errors == []

    client = mlflow.MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags["recbench.kind"] == "experiment"]
    trials = {r.data.tags["recbench.key"]: r for r in runs
              if r.data.tags["recbench.kind"] == "trial"}
    assert set(trials) == {r["key"] for r in records} and len(trials) == 4
    assert parent.data.metrics == {"trials_planned": 4, "trials_stored_before": 0, "trials_ok": 2,
                                   "trials_failed": 2, "trials_missing": 0,
                                   "trials_unsupported": 0}
    assert parent.data.params["protocol.ks"] == "[5]" and parent.data.params["seeds"] == "[0, 1]"

    for record in records:
        run = trials[record["key"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["model.name"] == record["identity"]["model"]["name"]
        assert run.data.params["seed"] == str(record["seed"])
        assert run.data.params["dataset.config.n_users"] == "60"
        [artifact] = [a.path for a in client.list_artifacts(run.info.run_id, "")
                      if a.path == "record.json"]
        path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=artifact,
                                                   dst_path=str(tmp_path / record["key"]),
                                                   tracking_uri=store_uri)
        logged = json.loads(Path(path).read_text())
        if record["status"] == "ok":
            assert run.info.status == "FINISHED"
            assert logged == ResultStore(results).get(record["key"])
            assert run.data.metrics["ndcg_at_5"] == pytest.approx(record["metrics"]["ndcg@5"])
            assert run.data.metrics["timings/fit_s"] == pytest.approx(record["timings"]["fit_s"])
            assert run.data.metrics["counts/users_evaluated"] == record["counts"]["users_evaluated"]
            assert run.data.metrics["n_parameters"] == record["n_parameters"]
            assert run.data.tags["recbench.split_fingerprint"] == \
                record["provenance"]["split_fingerprint"]
        else:
            assert run.info.status == "FAILED"
            assert "FloatingPointError: loss is NaN" in run.data.tags["recbench.error"]
            assert logged["error"] == record["error"]

    # Resumed: the stored successes are not logged again; the failures are retried and logged.
    Runner(exp, registry, RunOptions(results_dir=results)).run()
    runs = client.search_runs([experiment.experiment_id])
    assert sum(r.data.tags["recbench.kind"] == "trial" for r in runs) == 4 + 2
    latest = max((r for r in runs if r.data.tags["recbench.kind"] == "experiment"),
                 key=lambda r: r.info.start_time)
    assert latest.data.metrics["trials_stored_before"] == 2
