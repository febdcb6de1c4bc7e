"""recbench's hook specifications: the whole plugin API, and nothing else.

Registration hooks are called once when the plugin manager is built and return lists of specs
(:mod:`recbench.specs`; a :class:`~recbench.specs.Deferred` among them names specs built on
first use); every plugin's answers are collected. Lifecycle hooks are called by the
runner for loggers and trackers; their return values are ignored. Each hook is documented in
``docs/hooks.md`` with its exact signature and an example; a test keeps the two in step.
"""

from __future__ import annotations

import pluggy

from .config import Experiment
from .records import PlannedTrial, TrialRecord
from .specs import DatasetSpec, Deferred, MetricSpec, ModelSpec, SplitterSpec

PROJECT = "recbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------- registration (at start-up)


@hookspec
def register_models() -> list[ModelSpec | Deferred]:
    """Return the models this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_datasets() -> list[DatasetSpec | Deferred]:
    """Return the datasets this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_metrics() -> list[MetricSpec | Deferred]:
    """Return the metrics this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_splitters() -> list[SplitterSpec | Deferred]:
    """Return the split protocols this plugin contributes. Called once when the manager is built."""


# ---------------------------------------------------------------- lifecycle (during a run)


@hookspec
def run_started(experiment: Experiment, trials: list[PlannedTrial]) -> None:
    """Called once before the first trial of ``recbench run``, after every dataset is loaded and
    checked; ``trials`` lists every planned trial in run order as :class:`recbench.records.PlannedTrial`
    (``key``, ``dataset`` and ``model`` labels, ``seed``, ``stored``: True for a trial already in the
    store, which will be skipped, and ``identity``)."""


@hookspec
def trial_finished(record: TrialRecord) -> None:
    """Called after each trial is stored (``record["status"]`` is ``"ok"`` or ``"failed"``), with the
    record exactly as written to the result store (:class:`recbench.records.TrialRecord`, documented
    in ``docs/trial-record.md``). Not called for trials skipped as already stored."""


@hookspec
def run_finished(experiment: Experiment, records: list[TrialRecord]) -> None:
    """Called once after the last trial, with the records of every trial of the experiment
    (newly run and previously stored), in the order of ``run_started``'s ``trials``."""
