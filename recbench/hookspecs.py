"""recbench's hook specifications: the whole plugin API, and nothing else.

Registration hooks are called once when the plugin manager is built and return lists of specs
(:mod:`recbench.specs`); every plugin's answers are collected. Lifecycle hooks are called by the
runner for loggers and trackers; their return values are ignored. Each hook is documented in
``docs/hooks.md`` with its exact signature and an example; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

import pluggy

from .specs import DatasetSpec, MetricSpec, ModelSpec, SplitterSpec

PROJECT = "recbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------- registration (at start-up)


@hookspec
def register_models() -> list[ModelSpec]:
    """Return the models this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_datasets() -> list[DatasetSpec]:
    """Return the datasets this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_metrics() -> list[MetricSpec]:
    """Return the metrics this plugin contributes. Called once when the plugin manager is built."""


@hookspec
def register_splitters() -> list[SplitterSpec]:
    """Return the split protocols this plugin contributes. Called once when the manager is built."""


# ---------------------------------------------------------------- lifecycle (during a run)


@hookspec
def run_started(experiment: Any, trials: list[dict[str, Any]]) -> None:
    """Called once before the first trial of ``recbench run``; ``trials`` lists every planned trial
    (its ``key``, ``dataset``, ``model``, ``seed`` and ``stored``: True for a trial already in the
    store, which will be skipped)."""


@hookspec
def trial_finished(record: dict[str, Any]) -> None:
    """Called after each trial is stored (``record["status"]`` is ``"ok"`` or ``"failed"``), with the
    record exactly as written to the result store. Not called for trials skipped as already stored."""


@hookspec
def run_finished(experiment: Any, records: list[dict[str, Any]]) -> None:
    """Called once after the last trial, with the records of every trial of the experiment
    (newly run and previously stored)."""
