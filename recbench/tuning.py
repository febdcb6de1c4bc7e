"""Choosing a model's setting on validation data, then one test score (``protocol.tuning``).

A model with a ``search`` grid, or a protocol with ``tuning.split`` or ``tuning.refit``, is tuned in
each trial: every setting of its grid is fitted on the training part (early stopping on the
validation part where the model does it) and scored on the validation part; the best one, by
``tuning.metric``, is tested. With ``refit`` the chosen setting is fitted again on training plus
validation, for the epoch count early stopping chose. The test part is never seen before the one
test score. What was tried and chosen is stored in the trial record's ``tuning`` entry.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import Component, Tuning, to_dict
from .data import Interactions, Split
from .errors import ConfigError, ModelError, RecbenchError
from .specs import fit_info

# (fitted model, split whose ``test`` part it is scored on) -> {metric label: value}
Scorer = Callable[[Any, Split], dict[str, float]]


def grid(component: Component) -> list[dict[str, Any]]:
    """Every config of the component's search grid (``config`` with one value per searched key),
    in the grid's order; just ``config`` without a grid."""
    keys = list(component.search)
    return [{**component.config, **dict(zip(keys, values))}
            for values in itertools.product(*(component.search[k] for k in keys))]


def is_active(tuning: Tuning, component: Component) -> bool:
    return bool(component.search) or tuning.split is not None or tuning.refit


def chosen_metric(tuning: Tuning, labels: dict[str, bool]) -> tuple[str, bool]:
    """(metric label, higher is better) that chooses: ``tuning.metric`` or the first label."""
    name = tuning.metric or next(iter(labels))
    if name not in labels:
        raise ConfigError(f"protocol.tuning.metric: {name!r} is not computed by this protocol; "
                          f"use one of {', '.join(labels)}")
    return name, labels[name]


def validation_split(split: Split, inner: Split | None) -> Split:
    """The split the settings are chosen on: training part -> validation part as its test part."""
    if inner is not None:
        if inner.valid is not None:
            raise ConfigError("protocol.tuning.split must make two parts (training, validation), "
                              "e.g. ratio with ratios = [0.9, 0.1]")
        if split.valid is not None:
            raise ConfigError("protocol.tuning.split: the split already has a validation part; "
                              "remove tuning.split to choose on it")
        return Split(inner.train, inner.test, protocol=inner.protocol)
    if split.valid is None:
        raise ConfigError("protocol.tuning: the split has no validation part to choose a setting "
                          "on; set protocol.tuning.split (e.g. ratio with ratios = [0.9, 0.1])")
    return Split(split.train, split.valid, protocol=split.protocol)


@dataclass
class Tuned:
    built: Any  # the model of the chosen setting
    fitted: Any  # that model fitted: the one tested
    test_split: Split  # what it is tested on: the training part it was fitted on, the test part
    record: dict[str, Any]  # the trial record's ``tuning`` entry


def tested_split(split: Split, valid_split: Split, refit: bool) -> Split:
    """What the tested model is scored on: the data it was fitted on as the training part (with
    the validation part kept as such without refit), and the outer test part."""
    if refit:
        return Split(Interactions.concat(valid_split.train, valid_split.test), split.test,
                     protocol=split.protocol)
    return Split(valid_split.train, split.test, valid=valid_split.test, protocol=split.protocol)


def tested_config(config: Any, record: dict[str, Any]) -> Any:
    """The config of the tested model: the chosen one, with the refit's epoch count."""
    if "refit_epochs" in record:
        return dataclasses.replace(config, epochs=record["refit_epochs"])
    return config


def tune(configs: list[Any], build: Callable[[Any], Any], split: Split, valid_split: Split,
         score: Scorer, metric: tuple[str, bool], tuning: Tuning, *, key: Any) -> Tuned:
    """Fit every config on ``valid_split``'s training part, keep the best on its test part (the
    validation part), optionally refit it; ``build(config)`` makes the model. Ties keep the
    earlier config of the grid; a setting whose fit fails or scores NaN is recorded and never
    chosen (the trial fails only when every setting does)."""
    name, higher = metric
    tried, best = [], None
    for config in configs:
        t0 = time.perf_counter()
        try:
            built = build(config)
            fitted = built.fit(valid_split.train, valid=valid_split.test, key=key)
            value = float(score(fitted, valid_split)[name])
        except RecbenchError as e:  # e.g. training diverged at this learning rate
            if len(configs) == 1:
                raise
            tried.append({"config": to_dict(config), "score": None,
                          "fit_s": time.perf_counter() - t0, "error": str(e)})
            continue
        info = fit_info(fitted)
        tried.append({"config": to_dict(config), "score": None if math.isnan(value) else value,
                      "fit_s": time.perf_counter() - t0,
                      **({"best_epoch": info["best_epoch"]} if "best_epoch" in info else {})})
        if math.isnan(value):
            continue
        if best is None or (value > best[2] if higher else value < best[2]):
            best = (config, built, value, fitted, info)
    if best is None:
        raise ModelError(f"protocol.tuning: no setting of the grid could be scored on the "
                         f"validation part: {'; '.join(t.get('error', 'NaN') for t in tried)}")
    config, built, _, fitted, info = best
    record: dict[str, Any] = {"metric": name, "refit": tuning.refit, "tried": tried,
                              "chosen": to_dict(config),
                              "validation": "split" if tuning.split is None
                              else to_dict(tuning.split)}
    test_split = tested_split(split, valid_split, tuning.refit)
    if not tuning.refit:
        return Tuned(built, fitted, test_split, record)
    if "best_epoch" in info and "epochs" in {f.name for f in dataclasses.fields(config)}:
        # Early stopping's choice, fixed: no validation part is left to stop on.
        record["refit_epochs"] = max(int(info["best_epoch"]), 1)
    built = build(tested_config(config, record))
    fitted = built.fit(test_split.train, valid=None, key=key)
    return Tuned(built, fitted, test_split, record)
