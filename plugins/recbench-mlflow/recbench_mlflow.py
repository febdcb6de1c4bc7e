"""recbench -> MLflow: one MLflow run per `recbench run`, one nested run per trial.

Lifecycle hooks only (recbench's ``run_started``, ``trial_finished``, ``run_finished``):

- ``run_started`` opens the parent run in the MLflow experiment named like the recbench experiment
  (or ``$RECBENCH_MLFLOW_EXPERIMENT``), with the protocol, seeds and planned trial counts as params;
- ``trial_finished`` logs each trial as a child run: the trial's identity flattened into params
  (dataset and model configs, protocol, seed), its metrics (``ndcg@10`` is logged as
  ``ndcg_at_10``: MLflow keys cannot hold ``@``), timings, counts, memory, parameter count and
  numeric ``fit_info`` as metrics, provenance as ``recbench.*`` tags, and the whole trial record as
  the artifact ``record.json`` (plus ``traceback.txt`` and status FAILED for a failed trial);
- ``run_finished`` logs how many trials succeeded, failed or left no record, and ``trials.json``
  (key, labels, status and metrics of every trial, stored ones from an earlier run included).

Where: MLflow's own ``MLFLOW_TRACKING_URI`` (a server, ``file:///path/mlruns``, ...). An error from
MLflow reaches recbench, which prints it as a warning and goes on with the run.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from recbench.api import Experiment, PlannedTrial, TrialRecord, hookimpl, to_dict

EXPERIMENT_VAR = "RECBENCH_MLFLOW_EXPERIMENT"
BATCH = 100  # MLflow's limit of params per log_batch call
MAX_VALUE = 6000  # MLflow's longest param value


def key(name: str) -> str:
    """An MLflow metric or param key: ``@`` spelled ``_at_``, other forbidden characters ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", name.replace("@", "_at_"))


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``a.b.c`` keys; lists and scalars as JSON text (``null`` for None)."""
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = value if isinstance(value, str) else json.dumps(value)
    return {key(prefix): text[:MAX_VALUE]}


def numbers(values: dict[str, Any] | None, prefix: str) -> dict[str, float]:
    """The numeric entries (not bools, not None) of a record's section, as metric name -> value."""
    return {key(prefix + k): float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracker:
    """State of the recbench run being logged: the client, experiment and parent run."""

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.experiment_id: str | None = None
        self.parent: str | None = None

    def start(self, name: str) -> None:
        self.client = MlflowClient()  # MLFLOW_TRACKING_URI, else MLflow's default store
        name = os.environ.get(EXPERIMENT_VAR) or name
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = (found.experiment_id if found is not None
                              else self.client.create_experiment(name))

    def log(self, run_id: str, metrics: dict[str, float] | None = None,
            params: dict[str, str] | None = None) -> None:
        assert self.client is not None
        now = int(time.time() * 1000)
        ms = [Metric(k, v, now, 0) for k, v in (metrics or {}).items()]
        ps = [Param(k, v) for k, v in (params or {}).items()]
        for i in range(0, max(len(ms), len(ps), 1), BATCH):
            self.client.log_batch(run_id, metrics=ms[i:i + BATCH], params=ps[i:i + BATCH])

    def run_started(self, experiment: Experiment, trials: list[PlannedTrial]) -> None:
        self.start(experiment.name)
        assert self.client is not None and self.experiment_id is not None
        self.parent = self.client.create_run(
            self.experiment_id, run_name=experiment.name,
            tags={"recbench.kind": "experiment"}).info.run_id
        params = flatten(to_dict(experiment.protocol), "protocol")
        params["seeds"] = json.dumps(list(experiment.seeds))
        params["datasets"] = json.dumps([d.label or d.name for d in experiment.datasets])
        params["models"] = json.dumps([m.label or m.name for m in experiment.models])
        self.log(self.parent, params=params, metrics={
            "trials_planned": float(len(trials)),
            "trials_stored_before": float(sum(t.stored for t in trials))})

    def trial_finished(self, record: TrialRecord) -> None:
        if self.client is None:  # a trial outside `recbench run`: no parent run
            self.start("recbench")
        assert self.client is not None and self.experiment_id is not None
        fold = f" fold {record['fold']}" if "fold" in record else ""
        tags = {"recbench.kind": "trial", "recbench.key": record["key"],
                "recbench.status": record["status"], "recbench.dataset": record["dataset"],
                "recbench.model": record["model"]}
        if self.parent is not None:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent
        provenance = record.get("provenance", {})
        for name, value in (("config_hash", record.get("config_hash")),
                            ("dataset_checksum", provenance.get("dataset_checksum")),
                            ("split_fingerprint", provenance.get("split_fingerprint")),
                            ("git_commit", provenance.get("git_commit")),
                            ("device_kind", provenance.get("hardware", {}).get("device_kind")),
                            ("started", record.get("started")), ("stage", record.get("stage")),
                            ("error", record.get("error"))):
            if value is not None:
                tags[f"recbench.{name}"] = str(value)[:MAX_VALUE]
        fit_info = record.get("fit_info", {})
        tags.update({f"recbench.fit_info.{k}": v for k, v in fit_info.items()
                     if isinstance(v, str)})
        run = self.client.create_run(
            self.experiment_id, run_name=f"{record['dataset']} / {record['model']} / seed "
                                         f"{record['seed']}{fold}", tags=tags).info.run_id
        metrics = {**numbers(record.get("metrics"), ""),
                   **numbers(record.get("timings"), "timings/"),
                   **numbers(record.get("counts"), "counts/"),
                   **numbers(record.get("memory"), "memory/"),
                   **numbers(fit_info, "fit_info/")}
        if "n_parameters" in record:
            metrics["n_parameters"] = float(record["n_parameters"])
        self.log(run, metrics=metrics, params=flatten(record.get("identity", {})))
        self.client.log_text(run, json.dumps(record, indent=1), "record.json")
        if record["status"] not in ("ok", "unsupported"):  # "unsupported": a model that cannot
            self.client.log_text(run, str(record.get("traceback", "")), "traceback.txt")  # serve
        self.client.set_terminated(run, "FAILED" if record["status"] not in ("ok", "unsupported")
                                   else "FINISHED")  # the protocol (e.g. cold items) did not fail

    def run_finished(self, experiment: Experiment, records: list[TrialRecord]) -> None:
        if self.client is None or self.parent is None:
            return  # run_started failed (it was reported): nothing to close
        statuses = [r["status"] for r in records]
        self.log(self.parent, metrics={f"trials_{s}": float(statuses.count(s))
                                       for s in ("ok", "unsupported", "failed", "missing")})
        summary = [{k: r[k] for k in ("key", "dataset", "model", "seed", "fold", "status",
                                      "metrics") if k in r} for r in records]
        self.client.log_text(self.parent, json.dumps(summary, indent=1), "trials.json")
        self.client.set_terminated(self.parent, "FINISHED")
        self.client = self.experiment_id = self.parent = None


# The plugin is this module: its hook implementations share one tracker (one run at a time).
TRACKER = Tracker()


@hookimpl
def run_started(experiment: Experiment, trials: list[PlannedTrial]) -> None:
    TRACKER.run_started(experiment, trials)


@hookimpl
def trial_finished(record: TrialRecord) -> None:
    TRACKER.trial_finished(record)


@hookimpl
def run_finished(experiment: Experiment, records: list[TrialRecord]) -> None:
    TRACKER.run_finished(experiment, records)
