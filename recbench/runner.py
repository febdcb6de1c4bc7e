"""Turns an experiment into trials, runs the ones not yet stored, and records everything.

One trial = (dataset, seed, model). The split is shared by every model of a (dataset, seed), so models
are compared on identical data. A trial's key is the hash of everything that determines its numbers;
a stored key is skipped, so a killed run resumes where it stopped. Any exception inside a trial is
recorded as a failed trial and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import __version__, datacache, preprocess, provenance
from .config import Component, Experiment, config_hash, from_mapping, to_dict
from .data import Dataset, Interactions, Split
from .errors import ConfigError, RecbenchError
from .evaluate import binary_pairs, evaluate_points, evaluate_ranking
from .random import derive_key, derive_rng
from .registry import Registry
from .specs import LoadContext, ModelContext, missing_requirements
from .store import ResultStore


@dataclass(frozen=True)
class Trial:
    key: str
    dataset: str
    model: str
    seed: int
    identity: dict[str, Any]


@dataclass
class RunOptions:
    results_dir: Path
    data_dir: Path | None = None
    cache_dir: Path = field(default_factory=datacache.default_cache_dir)
    device: str | None = None  # "cpu", "gpu", "tpu"; None = JAX's default backend


def resolve(registry: Registry, kind: str, component: Component, where: str) -> tuple[Any, Any]:
    """(spec, validated config) for a component; errors name the experiment key."""
    spec = registry.spec(kind, component.name)
    return spec, from_mapping(spec.config, component.config, where=f"{where}.config")


def validate(experiment: Experiment, registry: Registry) -> None:
    """Check every name and config before any work starts, so typos fail in a second, not an hour."""
    p = experiment.protocol
    for i, d in enumerate(experiment.datasets):
        resolve(registry, "dataset", d, f"datasets[{i}]")
    for i, m in enumerate(experiment.models):
        spec, _ = resolve(registry, "model", m, f"models[{i}]")
        if p.task not in spec.tasks:
            raise ConfigError(f"models[{i}]: model {m.name!r} does not serve task {p.task!r} "
                              f"(it serves {', '.join(sorted(spec.tasks))})")
    resolve(registry, "splitter", p.split, "protocol.split")
    for name in p.metrics:
        spec = registry.spec("metric", name)
        if spec.task != p.task:
            raise ConfigError(f"protocol.metrics: {name!r} is a {spec.task} metric but the protocol's "
                              f"task is {p.task!r}")


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
                 progress: Callable[[int, int, str], None] | None = None):
        validate(experiment, registry)
        self.experiment = experiment
        self.registry = registry
        self.options = options
        self.store = ResultStore(options.results_dir)
        self.device = device_for(options.device)
        self.hook = registry.host.pm.hook
        self.progress = progress or (lambda done, total, message: None)
        self.hook_errors: list[str] = []

    # ------------------------------------------------------------------ data

    def load_dataset(self, component: Component, index: int) -> Dataset:
        spec, cfg = resolve(self.registry, "dataset", component, f"datasets[{index}]")
        ds = open_dataset(spec, cfg, LoadContext(self.options.data_dir, self.options.cache_dir))
        return preprocess.apply(ds, self.experiment.protocol.preprocess)

    def make_split(self, ds: Dataset, seed: int) -> Split:
        p = self.experiment.protocol
        spec, cfg = resolve(self.registry, "splitter", p.split, "protocol.split")
        data = ds if spec.takes_dataset else ds.interactions
        return spec.split(data, cfg, derive_rng(seed, "split", ds.name, ds.checksum))

    def trial(self, ds_component: Component, ds: Dataset | Exception, model: Component,
              seed: int) -> Trial:
        mspec, mcfg = resolve(self.registry, "model", model, "model")
        _, dcfg = resolve(self.registry, "dataset", ds_component, "dataset")
        p = self.experiment.protocol
        plugins = {f"{kind}:{name}": self._plugin_version(kind, name) for kind, name in
                   [("model", model.name), ("dataset", ds_component.name),
                    ("splitter", p.split.name), *(("metric", m) for m in p.metrics)]}
        identity = {
            "dataset": {"name": ds_component.name, "label": ds_component.display,
                        "config": to_dict(dcfg), "checksum": getattr(ds, "checksum", None)},
            "protocol": to_dict(p),
            "model": {"name": model.name, "label": model.display, "config": to_dict(mcfg)},
            "seed": seed,
            "recbench": __version__,
            "plugins": plugins,  # a plugin upgrade must not reuse results of the old version
        }
        return Trial(config_hash(identity)[:32], ds_component.display, model.display, seed, identity)

    def _plugin_version(self, kind: str, name: str) -> str:
        entry = self.registry.get(kind, name)
        return f"{entry.distribution} {entry.version}"

    # ------------------------------------------------------------------ run

    def plan(self) -> Iterator[tuple[int, Dataset | Exception, list[tuple[Component, Trial]]]]:
        """(seed, dataset or its load error, trials) per dataset and seed."""
        for i, dc in enumerate(self.experiment.datasets):
            try:
                ds: Dataset | Exception = self.load_dataset(dc, i)
            except Exception as e:  # noqa: BLE001 - the other datasets still run
                ds = e
            for seed in self.experiment.seeds:
                yield seed, ds, [(m, self.trial(dc, ds, m, seed)) for m in self.experiment.models]

    def run(self) -> list[dict[str, Any]]:
        plan = list(self.plan())
        trials = [t for *_, pairs in plan for _, t in pairs]
        self._call_hook("run_started", experiment=self.experiment,
                        trials=[{"key": t.key, "dataset": t.dataset, "model": t.model,
                                 "seed": t.seed, "stored": self.store.has(t.key)} for t in trials])
        done = 0
        with jax.default_device(self.device):
            for seed, ds, pairs in plan:
                todo = [(m, t) for m, t in pairs if not self.store.has(t.key)]
                done += len(pairs) - len(todo)
                if not todo:
                    continue
                split: Split | Exception = ds
                if isinstance(ds, Dataset):
                    try:
                        split = self.make_split(ds, seed)
                    except Exception as e:  # noqa: BLE001 - recorded on each of its trials
                        split = e
                for model, trial in todo:
                    self.progress(done, len(trials), f"{trial.dataset} / {trial.model} / seed {seed}")
                    if isinstance(split, Exception):
                        record, per_user = _failed(trial, split, "preparing the data"), {}
                    else:
                        record, per_user = self.run_trial(ds, split, model, trial)
                    record = self._store(record, per_user, trial)
                    self._call_hook("trial_finished", record=record)
                    done += 1
        self.progress(done, len(trials), "done")
        records = [self.store.get(t.key) if self.store.has(t.key)
                   else _failed_record(self.store, t) for t in trials]
        self._call_hook("run_finished", experiment=self.experiment, records=records)
        return records

    def _store(self, record: dict[str, Any], per_user: dict[str, np.ndarray], trial: Trial
               ) -> dict[str, Any]:
        """Store a trial; a record that cannot be stored becomes a stored failure, never a crash."""
        try:
            self.store.put(record, per_user)
            return record
        except Exception as e:  # noqa: BLE001 - e.g. a plugin's non-JSON timing value
            failed = {**_failed(trial, e, "storing the result"),
                      "provenance": record.get("provenance")}
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

    def run_trial(self, ds: Dataset, split: Split, model: Component, trial: Trial
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        record: dict[str, Any] = {
            "key": trial.key, "dataset": trial.dataset, "model": trial.model, "seed": trial.seed,
            "identity": trial.identity, "config_hash": config_hash(trial.identity["model"]),
            "provenance": {
                "dataset_checksum": ds.checksum, "split_fingerprint": split.fingerprint,
                "split_protocol": split.protocol, "versions": provenance.versions(),
                "hardware": provenance.hardware(self.device), "git_commit": provenance.git_commit(),
                "data_shape": {"users": ds.interactions.n_users, "items": ds.interactions.n_items,
                               "train": len(split.train), "test": len(split.test),
                               "valid": len(split.valid) if split.valid is not None else 0},
            },
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            metrics, per_user, timings, extra = self._fit_and_evaluate(ds, split, model, trial)
        except Exception as e:  # noqa: BLE001 - a failing model is recorded, the run goes on
            return {**record, **_failed(trial, e, "fit/evaluate")}, {}
        record.update(status="ok", metrics=metrics, timings=timings, **extra)
        return record, per_user

    def _fit_and_evaluate(self, ds: Dataset, split: Split, model: Component, trial: Trial):
        p = self.experiment.protocol
        spec, cfg = resolve(self.registry, "model", model, "model")
        missing = missing_requirements(spec, ds)
        if missing:
            raise RecbenchError(f"model {spec.name!r} needs {', '.join(missing)}, which dataset "
                                f"{ds.name!r} does not have")
        x = ds.interactions
        ctx = ModelContext(x.n_users, x.n_items, ds.item_features, ds.user_features, p.task,
                           p.binary_threshold)
        key = derive_key(trial.seed, "model", model.display, ds.name)
        memory_scope = provenance.reset_peak_host()
        t0 = time.perf_counter()
        fitted = spec.factory(cfg, ctx).fit(split.train, valid=split.valid, key=key)
        jax.block_until_ready(getattr(fitted, "__dict__", None))
        fit_s = time.perf_counter() - t0
        metrics = [self.registry.spec("metric", m) for m in p.metrics]
        if p.task == "ranking":
            with_valid = _with_valid(split)
            known = with_valid if p.mask_valid_in_test else split.train
            history = with_valid if p.history == "train+valid" else split.train
            result = evaluate_ranking(fitted, train=history, test=split.test, known=known,
                                      metrics=metrics, ks=p.ks, batch_size=p.batch_size)
        else:
            test = split.test
            if p.task == "rating" and test.rating is None:
                raise RecbenchError(f"task 'rating' needs ratings; dataset {ds.name!r} has none")
            users, items, target = (
                (test.user, test.item, test.rating) if p.task == "rating" else
                binary_pairs(test, _with_valid(split), p.binary_threshold,
                             derive_rng(trial.seed, "negatives", ds.name)))
            result = evaluate_points(fitted, users=users, items=items, target=target,
                                     metrics=metrics)
        timings = {"fit_s": fit_s, **getattr(fitted, "timings", {}), **result.timings}
        timings = {k: float(v) if isinstance(v, (int, float, np.number)) else v
                   for k, v in timings.items()}
        extra = {"counts": result.counts, "n_parameters": provenance.parameter_count(fitted),
                 "memory": {"peak_host_mb": provenance.peak_host_mb(),
                            "peak_host_scope": memory_scope,
                            "peak_device_mb": provenance.peak_device_mb(self.device)}}
        return result.metrics, result.per_user, timings, extra


def _with_valid(split: Split) -> Interactions:
    return split.train if split.valid is None else Interactions.concat(split.train, split.valid)


def _failed(trial: Trial, error: BaseException, stage: str) -> dict[str, Any]:
    return {"key": trial.key, "dataset": trial.dataset, "model": trial.model, "seed": trial.seed,
            "identity": trial.identity, "status": "failed", "stage": stage,
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error, limit=8))}


def _failed_record(store: ResultStore, trial: Trial) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((store.failed / f"{trial.key}.json").read_text())
    return {"key": trial.key, "dataset": trial.dataset, "model": trial.model, "seed": trial.seed,
            "status": "missing"}
