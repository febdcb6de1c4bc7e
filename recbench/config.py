"""Frozen-dataclass configs: validated at the edge, dumped to canonical JSON, loaded back equal.

:func:`from_mapping` turns a TOML/JSON mapping into a config dataclass: unknown keys are errors with a
did-you-mean, values are checked against the field types (int, float, bool, str, Literal, tuple,
Optional, nested dataclasses), and the dataclass's own ``__post_init__`` checks ranges.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError, did_you_mean


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of "
                          f"{', '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}."
                              f"{did_you_mean(str(value), map(str, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table/mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type, mapping: Any, where: str = "config") -> Any:
    """Validate ``mapping`` into the dataclass ``cls``; errors name the offending key path."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a table/mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"{where}: unknown key {k!r}.{did_you_mean(k, fields)} "
                          f"Valid keys: {', '.join(fields) or '(none)'}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(config: Any) -> Any:
    """A JSON-ready dict (tuples become lists) of a config dataclass."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


def identity_dict(config: Any) -> dict[str, Any]:
    """:func:`to_dict` of a model's config for its trial identity: a key that was added after
    results were stored declares ``metadata={"omit_default": True}`` and is left out while it
    holds its default, so the identities of earlier trials, and the random keys derived from
    them, stay what they were."""
    out = to_dict(config)
    for f in dataclasses.fields(config) if dataclasses.is_dataclass(config) else ():
        if f.metadata.get("omit_default") and f.default is not dataclasses.MISSING \
                and getattr(config, f.name) == f.default:
            del out[f.name]
    return out


def canonical_json(obj: Any) -> str:
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def check(condition: bool, message: str) -> None:
    """Range check for ``__post_init__``: raises :class:`ConfigError` with ``message``."""
    if not condition:
        raise ConfigError(message)


# ---------------------------------------------------------------- experiment config


@dataclass(frozen=True)
class Component:
    """A named plugin component and its options (validated later against the plugin's config type)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # shown in leaderboards; defaults to name
    # Models only: a grid of settings chosen on validation data per trial (protocol.tuning), e.g.
    # {l2 = [100.0, 250.0]}; every combination is tried on top of ``config``.
    search: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Plain JSON types only (tuples become lists), so a config equals its round trip.
        object.__setattr__(self, "config", json.loads(canonical_json(self.config)))
        object.__setattr__(self, "search", json.loads(canonical_json(self.search)))
        for k, values in self.search.items():
            check(isinstance(values, list) and len(values) > 0,
                  f"search.{k} must be a non-empty list of values, got {values!r}")

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Preprocess:
    """Applied in this order: dedup, implicit threshold, k-core."""

    dedup: Literal["none", "first", "last"] = "last"
    implicit_threshold: float | None = None  # keep ratings >= threshold, then treat as implicit
    user_core: int = 0
    item_core: int = 0

    def __post_init__(self) -> None:
        check(self.user_core >= 0 and self.item_core >= 0, "k-core sizes must be >= 0")


@dataclass(frozen=True)
class Tuning:
    """How a model's setting is chosen on validation data before its one test score.

    Active for a model with a ``search`` grid, or when ``split`` or ``refit`` is set: every setting
    of the grid is fitted on the training part (early stopping on the validation part where the
    model does it) and scored on the validation part; the best one is tested.
    """

    # The validation part: None = the split's own; a splitter (e.g. ratio with ratios = [0.9, 0.1])
    # = applied to the training part of a split that has none, its test part the validation part.
    split: Component | None = None
    # The validation metric that chooses, as the leaderboard names it ("ndcg@10", "rmse");
    # "" = the protocol's first metric at its first K.
    metric: str = ""
    # Refit the chosen setting on the whole training part (training + validation), for the epoch
    # count early stopping chose (``fit_info.best_epoch``) where the model has ``epochs``.
    refit: bool = False


@dataclass(frozen=True)
class Protocol:
    """How every trial of an experiment is split and scored (recorded with each result)."""

    task: Literal["ranking", "rating", "binary"] = "ranking"
    split: Component = field(default_factory=lambda: Component("ratio", {"ratios": (0.8, 0.1, 0.1)}))
    preprocess: Preprocess = field(default_factory=Preprocess)
    metrics: tuple[str, ...] = ("precision", "recall", "ndcg", "hit", "mrr", "map")
    ks: tuple[int, ...] = (10,)
    batch_size: int = 256
    mask_valid_in_test: bool = True  # validation items are masked at test time
    # What the model sees as a user's history when scoring the test set: "train" (RecBole's
    # general-model protocol) or "train+valid" (the full prefix, as sequential protocols use).
    history: Literal["train", "train+valid"] = "train"
    binary_threshold: float = 4.0  # rating >= threshold is a positive label (task binary)
    # Cross-validation: with folds = [0, 1, ...] every seed is split once per fold: `{fold}` in the
    # splitter config's strings is replaced by the fold (e.g. "u{fold}.base"), or, without such a
    # template, the config gets `fold = f` (kfold). A split's randomness depends on the seed only,
    # so the folds of one seed are one partition.
    folds: tuple[int, ...] = ()
    # Ranking: which items a test user ranks. "all": every item not masked; "cold": only the
    # held-out cold items (items of the test part that have no training interaction), as a
    # cold-start evaluation ranks new products among themselves. Recorded with every trial.
    candidates: Literal["all", "cold"] = "all"
    tuning: Tuning = field(default_factory=Tuning)

    def __post_init__(self) -> None:
        check(len(set(self.folds)) == len(self.folds) and all(f >= 0 for f in self.folds),
              f"folds must be distinct non-negative numbers, got {list(self.folds)}")
        check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), f"ks must be >= 1, got {self.ks}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(len(self.metrics) > 0, "metrics must name at least one metric")
        check(self.candidates == "all" or self.task == "ranking",
              f'candidates = "cold" applies to the ranking task only, not {self.task!r}')


@dataclass(frozen=True)
class Experiment:
    name: str = "experiment"
    datasets: tuple[Component, ...] = (Component("online-retail"),)
    models: tuple[Component, ...] = (Component("random"), Component("most-popular"))
    seeds: tuple[int, ...] = (0,)
    protocol: Protocol = field(default_factory=Protocol)

    def __post_init__(self) -> None:
        check(len(self.datasets) > 0, "experiment needs at least one dataset")
        check(len(self.models) > 0, "experiment needs at least one model")
        check(len(self.seeds) > 0, "experiment needs at least one seed")
        for kind, parts in (("model", self.models), ("dataset", self.datasets)):
            labels = [c.display for c in parts]
            dup = {x for x in labels if labels.count(x) > 1}
            check(not dup, f"{kind} labels must be unique, repeated: {sorted(dup)}; set `label`")
        check(len(set(self.seeds)) == len(self.seeds), f"seeds must be unique, got {list(self.seeds)}")


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment from TOML (or JSON); errors name the file and the key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read experiment config {path}: {e.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from None
    return from_mapping(Experiment, data, where=str(path))
