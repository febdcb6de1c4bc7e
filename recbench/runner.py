"""Turns an experiment into trials, runs the ones not yet stored, and records everything.

One trial = (dataset, seed, model). The split is shared by every model of a (dataset, seed), so models
are compared on identical data. The run goes in steps, each done once:

1. validate: every component is resolved to (spec, validated config) once;
2. check: each dataset is loaded (one at a time) and every check that needs no fitted model runs
   up front (model requirements, task vs ratings, K vs the item count); a dataset that cannot be
   loaded or fails a check stops the run before any training, with a one-line error;
3. plan: trial keys are hashes of everything that determines the numbers (data checksum, protocol,
   model name and config, seed, code versions); a stored key is skipped, so a killed run resumes;
4. run: one dataset in memory at a time; any exception inside a trial is recorded as a failed
   trial (:mod:`recbench.records` builds every record) and the run goes on.

The harness times every model the same way: ``fit`` and evaluation each under one wall clock and
one :class:`recbench.timing.CompileClock`. A model reports extras only through ``fit_info``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import jax
import numpy as np

from . import __version__, datacache, modelstate, preprocess, provenance, triallog, tuning
from .claims import Claim, Claims
from .config import (Component, Experiment, Tuning, check, config_hash, from_mapping,
                     identity_dict, to_dict)
from .data import Dataset, Interactions, Split
from .errors import ConfigError, DataError, RecbenchError
from .evaluate import binary_pairs, cold_candidates, evaluate_points, evaluate_ranking, metric_label
from .random import derive_key, derive_rng
from .records import (PlannedTrial, RetryPolicyRecord, TrialIdentity, TrialRecord, base_record,
                      died_record, failed_record, missing_record)
from .registry import Registry
from .specs import (DatasetSpec, LoadContext, MetricSpec, ModelContext, ModelSpec, SplitterSpec,
                    fit_info, item_text_of, missing_requirements)
from .store import USER_IDS, ResultStore, StoreError
from .timing import CompileClock

# What ``Runner.run`` reports after each finished trial: (record, trials done, trials planned).
TrialCallback = Callable[[TrialRecord, int, int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """What happens to a trial whose process dies (SIGKILL, out of memory, a crash in native code):
    it runs again, up to ``attempts`` times in all, attempt ``n`` after ``backoff_s * 2**(n-2)``
    seconds; then it is stored as failed with the reason. An exception inside a trial is not
    retried (it would fail again): it is stored as failed at once, and the next run retries it."""

    attempts: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        check(isinstance(self.attempts, int) and 1 <= self.attempts <= 100,
              f"retry attempts must be an integer in 1..100, got {self.attempts!r}")
        check(0 <= self.backoff_s <= 3600,
              f"retry backoff must be 0..3600 seconds, got {self.backoff_s!r}")

    def delay_s(self, attempt: int) -> float:
        return 0.0 if attempt <= 1 else self.backoff_s * 2 ** (attempt - 2)

    def as_record(self) -> RetryPolicyRecord:
        return {"attempts": self.attempts, "backoff_s": self.backoff_s}


@dataclass
class RunOptions:
    results_dir: Path
    data_dir: Path | None = None
    cache_dir: Path = field(default_factory=datacache.default_cache_dir)
    device: str | None = None  # "cpu", "gpu", "tpu"; None = JAX's default backend
    # A model whose requirements a dataset does not meet: "error" stops the run up front; "skip"
    # leaves that (dataset, model) out and lists it in ``Runner.skipped`` (the default experiment).
    unmet_requirements: Literal["error", "skip"] = "error"
    # Save each fitted model's state next to its trial record (models/), so the trial can serve
    # recommendations (`recbench recommend`) or be re-evaluated without retraining.
    save_models: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Whether a trial's output also reaches this process's stdout/stderr (in-process runs) or only
    # its log file (worker processes, whose output would garble the coordinator's terminal).
    echo_trial_output: bool = True


S = TypeVar("S", ModelSpec, DatasetSpec, SplitterSpec)


@dataclass(frozen=True)
class Resolved(Generic[S]):
    """A component of the experiment with its plugin spec and validated config."""

    component: Component
    spec: S
    config: Any
    where: str  # the experiment key, for error messages
    # Models: the validated config of every setting of the component's search grid.
    candidates: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def label(self) -> str:
        return self.component.display

    def identity(self) -> dict[str, Any]:
        """Name and config (and search grid): what determines results (the label is only
        shown). Without a grid the key is what it always was."""
        ident = {"name": self.name, "config": identity_dict(self.config)}
        return {**ident, "search": self.component.search} if self.component.search else ident


def resolve(lookup: Callable[[str], S], component: Component, where: str) -> Resolved[S]:
    """(spec, validated config) for a component, its spec from ``lookup`` (a typed registry
    accessor: ``registry.model``, ...); errors name the experiment key."""
    spec = lookup(component.name)
    config = from_mapping(spec.config, component.config, where=f"{where}.config")
    if not component.search:
        return Resolved(component, spec, config, where)
    if not isinstance(spec, ModelSpec):
        raise ConfigError(f"{where}.search: only models take a search grid")
    candidates = tuple(from_mapping(spec.config, c, where=f"{where}.search")
                       for c in tuning.grid(component))
    return Resolved(component, spec, config, where, candidates)


@dataclass(frozen=True)
class Plan:
    """The experiment's components, each resolved once."""

    datasets: tuple[Resolved[DatasetSpec], ...]
    models: tuple[Resolved[ModelSpec], ...]
    splitter: Resolved[SplitterSpec]
    metrics: tuple[MetricSpec, ...]
    fold_splitters: dict[int, Resolved[SplitterSpec]] = field(default_factory=dict)  # folds
    tuning_splitter: Resolved[SplitterSpec] | None = None  # protocol.tuning.split
    tuning_metric: tuple[str, bool] = ("", True)  # (label, higher is better) that chooses

    def splitter_for(self, fold: int | None) -> Resolved[SplitterSpec]:
        return self.splitter if fold is None else self.fold_splitters[fold]


def fold_config(config: dict[str, Any], fold: int) -> dict[str, Any]:
    """One fold's splitter config: ``{fold}`` in its strings replaced by the fold (given files such
    as ``u{fold}.base``), or, without such a template, ``fold = f`` set (the ``kfold`` splitter)."""
    templated = any(isinstance(v, str) and "{fold}" in v for v in config.values())
    out = {k: v.replace("{fold}", str(fold)) if isinstance(v, str) else v for k, v in config.items()}
    return out if templated else {**out, "fold": fold}


def validate(experiment: Experiment, registry: Registry) -> Plan:
    """Check every name and config before any work starts, so typos fail in a second, not an hour."""
    p = experiment.protocol
    datasets = tuple(resolve(registry.dataset, d, f"datasets[{i}]")
                     for i, d in enumerate(experiment.datasets))
    models = tuple(resolve(registry.model, m, f"models[{i}]")
                   for i, m in enumerate(experiment.models))
    for m in models:
        if p.task not in m.spec.tasks:
            raise ConfigError(f"{m.where}: model {m.name!r} does not serve task {p.task!r} "
                              f"(it serves {', '.join(sorted(m.spec.tasks))})")
    for kind, parts in (("model", models), ("dataset", datasets)):
        seen: dict[str, str] = {}
        for r in parts:
            ident = config_hash(r.identity())
            if ident in seen:  # same numbers under two labels: one of them is a mistake
                raise ConfigError(f"{r.where}: {kind} {r.name!r} with this config is already "
                                  f"{seen[ident]}; give one of them another config or remove it")
            seen[ident] = r.where
    splitter = resolve(registry.splitter, p.split, "protocol.split")
    fold_splitters = {
        f: resolve(registry.splitter, Component(p.split.name, fold_config(p.split.config, f)),
                   f"protocol.split (fold {f})") for f in p.folds}
    metrics = tuple(registry.metric(name) for name in p.metrics)
    for spec in metrics:
        if spec.task != p.task:
            raise ConfigError(f"protocol.metrics: {spec.name!r} is a {spec.task} metric but the "
                              f"protocol's task is {p.task!r}")
    t = p.tuning
    tuning_splitter = None if t.split is None else resolve(registry.splitter, t.split,
                                                           "protocol.tuning.split")
    if tuning_splitter is not None and tuning_splitter.spec.takes_dataset:
        raise ConfigError(f"protocol.tuning.split: splitter {t.split.name!r} reads the whole "
                          "dataset, so its parts could hold test interactions; use one that "
                          "splits the training part (ratio, leave-last-out, temporal, kfold)")
    if p.candidates == "cold" and t.split is not None and t.split.name != "cold-items":
        raise ConfigError(f'protocol.tuning.split: with protocol.candidates = "cold" a setting is '
                          f"chosen by ranking the validation part's cold items among themselves, "
                          f"and splitter {t.split.name!r} holds no item out of training; use "
                          f'"cold-items"')
    tuning_metric = tuning.chosen_metric(t, metric_labels(metrics, p))
    return Plan(datasets, models, splitter, metrics, fold_splitters, tuning_splitter,
                tuning_metric)


def metric_labels(metrics: tuple[MetricSpec, ...] | list[MetricSpec], p: Any) -> dict[str, bool]:
    """Every metric label the protocol computes ("ndcg@10", "rmse") -> higher is better."""
    return {metric_label(m, k): m.higher_is_better for m in metrics
            for k in (p.ks if m.uses_k and p.task == "ranking" else (None,))}


def open_dataset(spec: Any, cfg: Any, ctx: LoadContext) -> Dataset:
    """Load a dataset through the binary cache and check that the plugin returned a Dataset."""
    ds = datacache.load(spec, cfg, ctx)
    if not isinstance(ds, Dataset):
        raise RecbenchError(f"dataset plugin {spec.name!r} returned {type(ds).__name__}, "
                            f"expected recbench.Dataset")
    return ds


def device_for(name: str | None) -> jax.Device:
    try:
        return jax.devices(name)[0] if name else jax.devices()[0]
    except RuntimeError as e:
        raise ConfigError(f"device {name!r} is not available here ({e}); "
                          f"available: {sorted({d.platform for d in jax.devices()})}") from None


class Runner:
    def __init__(self, experiment: Experiment, registry: Registry, options: RunOptions,
                 progress: Callable[[int, int, str], None] | None = None,
                 on_trial: TrialCallback | None = None):
        self.plan_ = validate(experiment, registry)
        self.experiment = experiment
        self.registry = registry
        self.options = options
        self.store = ResultStore(options.results_dir)
        self.device = device_for(options.device)
        self.hook = registry.host.pm.hook
        self.progress = progress or (lambda done, total, message: None)
        self.on_trial = on_trial or (lambda record, done, total: None)
        self.hook_errors: list[str] = []
        # the dataset loaded last, kept for the run
        self._held: tuple[Resolved[DatasetSpec], Dataset] | None = None
        self._split: tuple[tuple[str, int, int | None], Split] | None = None
        self.claims = Claims(options.results_dir)
        self.skipped: list[str] = []  # (dataset, model) pairs left out, with the reason
        self.core_code = provenance.core_code()

    # ------------------------------------------------------------------ data

    def load_dataset(self, d: Resolved[DatasetSpec]) -> Dataset:
        """Load and preprocess one dataset; a failure stops the run (it would fail every trial)."""
        ctx = LoadContext(self.options.data_dir, self.options.cache_dir)
        try:
            ds = open_dataset(d.spec, d.config, ctx)
        except RecbenchError as e:
            raise type(e)(f"{d.where}: dataset {d.label!r} could not be loaded: {e}") from e
        except Exception as e:  # noqa: BLE001 - a plugin's own exception, named in one line
            raise DataError(f"{d.where}: dataset {d.label!r} could not be loaded: "
                            f"{type(e).__name__}: {e}") from e
        try:
            return preprocess.apply(ds, self.experiment.protocol.preprocess)
        except RecbenchError as e:
            raise type(e)(f"{d.where}: dataset {d.label!r}, protocol.preprocess: {e}") from e

    def check_dataset(self, d: Resolved[DatasetSpec], ds: Dataset
                      ) -> list[Resolved[ModelSpec]]:
        """Every check that needs no fitted model; returns the models to run on ``ds``."""
        p = self.experiment.protocol
        x = ds.interactions
        if p.task == "rating" and x.rating is None:
            raise ConfigError(f"{d.where}: task 'rating' needs ratings; dataset {d.label!r} has "
                              f"none (use task 'ranking' or 'binary', or a dataset with ratings)")
        too_big = [k for k in p.ks if k > x.n_items]
        if p.task == "ranking" and any(m.uses_k for m in self.plan_.metrics) and too_big:
            raise ConfigError(f"protocol.ks: K={max(too_big)} but dataset {d.label!r} has only "
                              f"{x.n_items} items (after preprocessing); use K <= {x.n_items}")
        models = []
        for m in self.plan_.models:
            missing = missing_requirements(m.spec, ds)
            if not missing:
                models.append(m)
                continue
            reason = (f"model {m.label!r} needs {', '.join(missing)}, which dataset {d.label!r} "
                      f"does not have")
            if self.options.unmet_requirements == "error":
                raise ConfigError(f"{m.where}: {reason}; remove the model or use another dataset")
            self.skipped.append(reason)
        return models

    def make_split(self, ds: Dataset, seed: int, fold: int | None = None) -> Split:
        s = self.plan_.splitter_for(fold)
        data = ds if s.spec.takes_dataset else ds.interactions
        return s.spec.split(data, s.config, derive_rng(seed, "split", ds.name, ds.checksum))

    # ------------------------------------------------------------------ plan

    def identity(self, d: Resolved[DatasetSpec], checksum: str, m: Resolved[ModelSpec], seed: int,
                 fold: int | None = None) -> TrialIdentity:
        p = self.experiment.protocol
        plugins = {f"{kind}:{name}": self._plugin_version(kind, name) for kind, name in
                   [("model", m.name), ("dataset", d.name), ("splitter", p.split.name),
                    *(("metric", name) for name in p.metrics)]}
        ident: TrialIdentity = {
            "dataset": {**d.identity(), "checksum": checksum},  # type: ignore[typeddict-item]
            # Without the folds list: a trial's own fold is below, so adding folds reuses trials.
            # Without candidates when "all" (the default), so keys stay what they were before it.
            # Without tuning when it is the default (off), for the same reason.
            "protocol": {k: v for k, v in to_dict(p).items()
                         if k != "folds" and not (k == "candidates" and v == "all")
                         and not (k == "tuning" and v == to_dict(Tuning()))},
            "model": m.identity(),  # type: ignore[typeddict-item]
            "seed": seed,
            "recbench": __version__,
            # A plugin upgrade, or an edit to an editable/local plugin or to recbench's own code,
            # must not reuse results of the old code.
            "plugins": plugins,
            "recbench_code": self.core_code,
        }
        if fold is not None:  # absent without folds, so those keys are what they always were
            ident["fold"] = fold
        s = self.plan_.splitter_for(fold)
        if s.spec.fingerprint is not None:  # the content of the files a split reads
            ident["split_inputs"] = s.spec.fingerprint(s.config)
        return ident

    def _plugin_version(self, kind: str, name: str) -> str:
        entry = self.registry.get(kind, name)
        # A --plugin file's distribution is its path: where it lies must not change the key.
        dist = "file" if entry.distribution.startswith("file:") else entry.distribution
        return f"{dist} {entry.version} code {entry.code}"

    def planned(self, d: Resolved[DatasetSpec], ds: Dataset, models: list[Resolved[ModelSpec]]
                ) -> list[PlannedTrial]:
        out = []
        for seed, fold in self.replicates():
            for m in models:
                ident = self.identity(d, ds.checksum, m, seed, fold)
                key = config_hash(ident)[:32]
                out.append(PlannedTrial(key, d.label, m.label, seed, self.store.has(key), ident,
                                        fold))
        return out

    def replicates(self) -> list[tuple[int, int | None]]:
        """(seed, fold) of every split: each seed once, or once per fold of protocol.folds."""
        folds = self.experiment.protocol.folds or (None,)
        return [(seed, fold) for seed in self.experiment.seeds for fold in folds]

    def prepare(self) -> list[tuple[Resolved[DatasetSpec], list[Resolved[ModelSpec]],
                                   list[PlannedTrial]]]:
        """Load and check each dataset, one in memory at a time; last first, so the first stays
        loaded for the run (an experiment of one dataset loads it once). The checks and the trial
        keys need the loaded data (its checksum is of the parsed, preprocessed interactions), so
        each other dataset is loaded again when its trials run (from the parse cache when its
        plugin can fingerprint its source: `DatasetSpec.fingerprint`)."""
        prepared = []
        for d in reversed(self.plan_.datasets):
            self._held = None  # release the previous dataset before loading the next
            self.progress(0, 0, f"checking {d.label}")
            ds = self.load_dataset(d)
            models = self.check_dataset(d, ds)
            prepared.append((d, models, self.planned(d, ds, models)))
            self._held = (d, ds)
            del ds
        return prepared[::-1]

    # ------------------------------------------------------------------ run

    def run(self, executor: Any = None) -> list[TrialRecord]:
        """Plan, then run the trials not yet stored on ``executor`` (in this process when None:
        :class:`recbench.executors.Serial`); every finished trial reaches the hooks and
        ``on_trial`` here, in this process, whichever executor ran it."""
        from .executors import Serial  # the executors drive this runner

        executor = executor or Serial()
        with executor.session():
            prepared = self.prepare()
            trials = [t for *_, planned in prepared for t in planned]
            self._call_hook("run_started", experiment=self.experiment, trials=trials)
            todo = [t for t in trials if not t.stored]
            done = len(trials) - len(todo)
            if not todo:
                self._held = None  # all stored: the data kept from the checks is not needed
            for event, item in executor.run(self, todo):
                if event == "started":
                    self.progress(done, len(trials), item)
                    continue
                done += 1
                self._call_hook("trial_finished", record=item)
                self.on_trial(item, done, len(trials))
        self._held, self._split = None, None  # one dataset in memory at a time, none after
        self.progress(done, len(trials), "done")
        records = [self._stored_record(t) for t in trials]
        self._call_hook("run_finished", experiment=self.experiment, records=records)
        return records

    def execute(self, trial: PlannedTrial) -> TrialRecord | dict[str, Any]:
        """Run one planned trial in this process and store it: its record, or, when another live
        process holds the trial's claim, that holder's details (the caller asks again later).

        A stale claim (its process died) is taken over as the next attempt, after the policy's
        backoff; once ``retry.attempts`` attempts have died, the trial is stored as failed instead.
        """
        with contextlib.suppress(StoreError):
            return self.store.get(trial.key)  # type: ignore[return-value]
        claim = self.claims.claim(trial.key)
        if not isinstance(claim, Claim):
            return claim
        policy = self.options.retry
        with self.claims.beating(claim):
            with contextlib.suppress(StoreError):  # stored between the first look and the claim
                return self.store.get(trial.key)  # type: ignore[return-value]
            if claim.previous is not None and claim.attempt > policy.attempts:
                return self._store(died_record(trial, claim.previous, policy.as_record()), {},
                                   trial)
            time.sleep(policy.delay_s(claim.attempt))
            log = self.store.logs / f"{trial.key}.log"
            header = (f"attempt {claim.attempt} of {policy.attempts}: {trial.dataset} / "
                      f"{trial.model} / seed {trial.seed} on {claim.holder['host']} pid "
                      f"{claim.holder['pid']} at {claim.holder['claimed']}")
            with triallog.capture(log, header, echo=self.options.echo_trial_output):
                record, per_user = self._trial(trial)
            record.update(attempt=claim.attempt,  # type: ignore[typeddict-item]
                          retry_policy=policy.as_record(),
                          worker={k: claim.holder[k] for k in ("host", "pid")},
                          log=str(log.relative_to(self.store.root)))
            return self._store(record, per_user, trial)

    def _trial(self, trial: PlannedTrial) -> tuple[TrialRecord, dict[str, np.ndarray]]:
        """Fit and evaluate ``trial`` on its split, which is made once per (dataset, seed, fold)
        and kept while the next trials share it (the executors hand them out in that order). A
        split that fails is recorded on the trial, not kept: the next trial tries it again."""
        d = next(d for d in self.plan_.datasets if d.label == trial.dataset)
        model = next(m for m in self.plan_.models if m.label == trial.model)
        ds = self._dataset(d)
        if self.identity(d, ds.checksum, model, trial.seed, trial.fold) != trial.identity:
            # A worker elsewhere with other code, plugins or data: its numbers are not this key's.
            return failed_record(trial, ConfigError(
                f"the process running this trial (dataset {d.label!r}, model {model.label!r}) "
                "has other code, plugins or data than the one that planned it; install the same "
                "versions on every worker"), "checking the worker"), {}
        where = (d.label, trial.seed, trial.fold)
        if self._split is None or self._split[0] != where:
            self._split = None  # release the previous split before making the next
            try:
                self._split = (where, self.make_split(ds, trial.seed, trial.fold))
            except Exception as e:  # noqa: BLE001 - recorded; the next trial of it tries again
                return failed_record(trial, e, "splitting the data"), {}
        return self.run_trial(ds, self._split[1], model, trial)

    def _dataset(self, d: Resolved[DatasetSpec]) -> Dataset:
        if self._held is not None and self._held[0] is d:
            return self._held[1]
        self._held, self._split = None, None  # not this one: released before loading
        ds = self.load_dataset(d)
        self._held = (d, ds)
        return ds

    def _stored_record(self, trial: PlannedTrial) -> TrialRecord:
        with contextlib.suppress(StoreError):  # absent or damaged (then set aside): look further
            return self.store.get(trial.key)  # type: ignore[return-value]
        failed = self.store.failed / f"{trial.key}.json"
        try:
            return json.loads(failed.read_text())
        except (OSError, ValueError):
            return missing_record(trial)

    def _store(self, record: TrialRecord, per_user: dict[str, np.ndarray], trial: PlannedTrial
               ) -> TrialRecord:
        """Store a trial; a record that cannot be stored becomes a stored failure, never a crash."""
        try:
            if self.store.put(record, per_user) == "already stored":
                # Another run stored this trial first: its record is the one on disk.
                with contextlib.suppress(StoreError):
                    winner = self.store.get(trial.key)
                    ours = record.get("saved_model", {}).get("file")
                    if ours and winner.get("saved_model", {}).get("file") != ours:
                        (self.store.models / ours).unlink(missing_ok=True)
                    return winner  # type: ignore[return-value]
            return record
        except OSError as e:  # a full disk, lost permissions: every next trial would fail too
            raise StoreError(f"{trial.dataset} / {trial.model} / seed {trial.seed}: its record "
                             f"could not be written to {self.store.root} ({e}); free space or fix "
                             "access and run again: stored trials are kept, the run resumes"
                             ) from None
        except Exception as e:  # noqa: BLE001 - e.g. a record that is not JSON
            failed = failed_record(trial, e, "storing the result", keep_from=record)
            self.store.put(failed)
            return failed

    def _call_hook(self, name: str, **kwargs: Any) -> None:
        # In pluggy's call order, each implementation given only the arguments it declares. A
        # tracker that raises must not stop the benchmark: its error is kept and shown.
        for impl in reversed(getattr(self.hook, name).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                self.hook_errors.append(f"plugin {impl.plugin_name}: {name} is a wrapper; "
                                        f"lifecycle hooks take plain implementations only")
                continue
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as e:  # noqa: BLE001
                self.hook_errors.append(f"plugin {impl.plugin_name}: {name} raised "
                                        f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------------ one trial

    def run_trial(self, ds: Dataset, split: Split, model: Resolved[ModelSpec], trial: PlannedTrial
                  ) -> tuple[TrialRecord, dict[str, np.ndarray]]:
        """Fit and evaluate one model; the record of a success or of the failure."""
        record = base_record(trial)
        record.update(
            config_hash=config_hash(trial.identity["model"]),
            provenance={
                "dataset_checksum": ds.checksum, "split_fingerprint": split.fingerprint,
                "split_protocol": split.protocol, "versions": provenance.versions(),
                "hardware": provenance.hardware(self.device), "git_commit": provenance.git_commit(),
                "data_shape": {"users": ds.interactions.n_users, "items": ds.interactions.n_items,
                               "train": len(split.train), "test": len(split.test),
                               "valid": len(split.valid) if split.valid is not None else 0}},
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if not model.spec.cold_items and is_cold_item_split(split):
            # Not a failure and never random scores: the model cannot rank items it never saw.
            record.update(status="unsupported", reason=COLD_UNSUPPORTED)  # type: ignore[typeddict-item]
            return record, {}
        try:
            outcome, per_user = self._fit_and_evaluate(ds, split, model, trial)
        except Exception as e:  # noqa: BLE001 - a failing model is recorded, the run goes on
            return {**record, **failed_record(trial, e, "fit/evaluate")}, {}
        record.update(status="ok", **outcome)  # type: ignore[typeddict-item]
        return record, per_user

    def _fit_and_evaluate(self, ds: Dataset, split: Split, model: Resolved[ModelSpec],
                          trial: PlannedTrial) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        p = self.experiment.protocol
        ctx = model_context(ds, p)
        # From name and config, never the label: renaming a label changes no number.
        key = derive_key(trial.seed, "model", model.name, config_hash(model.identity()), ds.name)
        memory_scope = provenance.reset_peak_host()
        tuned = None
        with CompileClock() as fit_clock:  # a tuned model's clocks include its whole search
            t0 = time.perf_counter()
            if tuning.is_active(p.tuning, model.component):
                tuned = self._tune(ds, split, model, trial, ctx, key)
                built, fitted, split = tuned.built, tuned.fitted, tuned.test_split
            else:
                built = model.spec.factory(model.config, ctx)
                fitted = built.fit(split.train, valid=split.valid, key=key)
            jax.block_until_ready(getattr(fitted, "__dict__", None))
            fit_s = time.perf_counter() - t0
        extras = fit_info(fitted, f"model {model.name!r}")
        with CompileClock() as eval_clock:
            t0 = time.perf_counter()
            result = self._evaluate(fitted, split, trial, ds)
            eval_s = time.perf_counter() - t0
        fit_compile, eval_compile = fit_clock.seconds(), eval_clock.seconds()
        timings = {"fit_s": fit_s, "fit_compile_s": fit_compile,
                   "fit_steady_s": max(fit_s - fit_compile, 0.0),
                   "eval_s": eval_s, "eval_compile_s": eval_compile,
                   "eval_steady_s": max(eval_s - eval_compile, 0.0),
                   **{k: float(result.timings[k]) for k in ("score_s", "rank_s", "metrics_s")
                      if k in result.timings}}
        labels = metric_labels(self.plan_.metrics, p)
        outcome = {"metrics": result.metrics,
                   "higher_is_better": {k: v for k, v in labels.items() if k in result.metrics},
                   "timings": timings, "counts": result.counts,
                   "n_parameters": provenance.parameter_count(fitted),
                   "family": model.spec.family,  # reports group by it, plugin installed or not
                   **({"families": [model.spec.family, *model.spec.families]}
                      if model.spec.families else {}),
                   "memory": {"peak_host_mb": provenance.peak_host_mb(),
                              "peak_host_scope": memory_scope,
                              "peak_device_mb": provenance.peak_device_mb(self.device)},
                   "fit_info": extras}
        if tuned is not None:
            outcome["tuning"] = tuned.record
        if self.options.save_models:
            outcome["saved_model"] = self._save_model(built, fitted, model, trial)
        # Stored with the user ids they align with, so that paired tests can check the pairing.
        per_user = {**result.per_user, USER_IDS: result.users} if result.per_user else {}
        return outcome, per_user

    def _tune(self, ds: Dataset, split: Split, model: Resolved[ModelSpec], trial: PlannedTrial,
              ctx: ModelContext, key: Any) -> tuning.Tuned:
        """protocol.tuning for one trial: choose the setting on validation data, maybe refit."""
        valid_split = self.tuning_split(ds, split, trial.seed)

        def score(fitted: Any, on: Split) -> dict[str, float]:  # ranked as the test is ranked
            return self._evaluate(fitted, on, trial, ds).metrics

        return tuning.tune(list(model.candidates or (model.config,)),
                           lambda config: model.spec.factory(config, ctx), split, valid_split,
                           score, self.plan_.tuning_metric, self.experiment.protocol.tuning,
                           key=key)

    def tuning_split(self, ds: Dataset, split: Split, seed: int) -> Split:
        """The split a tuned trial chooses its setting on: the training part as its training
        part, the validation part (the split's own, or ``tuning.split`` of the training part) as
        its test part. Only the training part is split: the test part stays unseen."""
        inner = None
        if (s := self.plan_.tuning_splitter) is not None:
            inner = s.spec.split(split.train, s.config,
                                 derive_rng(seed, "tuning split", ds.name, ds.checksum))
        return tuning.validation_split(split, inner)

    def _save_model(self, built: Any, fitted: Any, model: Resolved[ModelSpec], trial: PlannedTrial
                    ) -> dict[str, Any]:
        """The record's ``saved_model`` entry: where the state went, or why it was not saved."""
        if not modelstate.can_save(fitted, built):
            return {"error": f"model {model.name!r} cannot be saved: its fitted model has no "
                             "state() or its model no restore(state) (see docs/hooks.md)"}
        return self.store.put_model(trial.key, modelstate.encode(fitted.state()))

    def _evaluate(self, fitted: Any, split: Split, trial: PlannedTrial, ds: Dataset) -> Any:
        p = self.experiment.protocol
        metrics = list(self.plan_.metrics)
        if p.task == "ranking":
            full = with_valid(split)
            known = full if p.mask_valid_in_test else split.train
            history = full if p.history == "train+valid" else split.train
            return evaluate_ranking(fitted, train=history, test=split.test, known=known,
                                    metrics=metrics, ks=p.ks, batch_size=p.batch_size,
                                    fit_on=split.train,
                                    candidates=candidate_items(split, p.candidates))
        test = split.test
        users, items, target = (
            (test.user, test.item, test.rating) if p.task == "rating" else
            binary_pairs(test, with_valid(split), p.binary_threshold,
                         derive_rng(trial.seed, "negatives", ds.name)))
        return evaluate_points(fitted, users=users, items=items, target=target, metrics=metrics)


COLD_UNSUPPORTED = "cannot serve cold items"


def is_cold_item_split(split: Split) -> bool:
    """Every test interaction is with an item that has no training interaction (the cold-items
    splitter, or given files that hold items out): only models declaring ``cold_items`` can
    rank the test items."""
    return bool((split.train.item_counts[split.test.item] == 0).all())


def candidate_items(split: Split, candidates: str) -> np.ndarray | None:
    """protocol.candidates as an item mask for the evaluator: None for "all"; for "cold" the test
    part's items that have no training interaction."""
    if candidates == "all":
        return None
    cold = cold_candidates(split.train, split.test)
    if not cold.any():
        raise DataError('protocol.candidates = "cold" but no test item is cold (every test item '
                        'has training interactions); use the cold-items splitter')
    return cold


def model_context(ds: Dataset, protocol: Any) -> ModelContext:
    """What a model factory is handed for dataset ``ds`` under ``protocol``."""
    x = ds.interactions
    return ModelContext(x.n_users, x.n_items, ds.item_features, ds.user_features, protocol.task,
                        protocol.binary_threshold, item_text_of(ds), protocol.candidates)


def with_valid(split: Split) -> Interactions:
    return split.train if split.valid is None else Interactions.concat(split.train, split.valid)

