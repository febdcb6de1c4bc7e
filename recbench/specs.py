"""What plugins register: typed specs for models, datasets, metrics and splitters, and the model API.

A plugin returns these from its registration hooks (see :mod:`recbench.hookspecs`). Every spec
carries a frozen-dataclass config type with defaults; the harness validates user configs into it.
"""

from __future__ import annotations

import math

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Union, get_args, runtime_checkable

import jax
import numpy as np

from .data import Dataset, FeatureTable, Interactions, Split, UserBatch
from .errors import ModelError, PluginError, did_you_mean

Task = Literal["ranking", "rating", "binary"]
TASKS: tuple[Task, ...] = get_args(Task)
Requirement = Literal["ratings", "timestamps", "item_features", "user_features"]
REQUIREMENTS: tuple[Requirement, ...] = get_args(Requirement)

# The model families recbench knows (leaderboards group by them). The list is closed so a typo
# ("latent_factor") is an error, not a new group; a plugin whose model fits none of them names
# its own family with the prefix ``x-`` (e.g. ``"x-graph"``), which is accepted as declared by
# that plugin. Ask for a family to join this list by opening an issue.
FAMILIES: tuple[str, ...] = (
    "baseline", "cf-user", "cf-item", "latent-factor", "neural-cf", "autoencoder", "graph",
    "content", "hybrid", "cnn", "rnn", "lstm", "attention", "sequential",
)
PLUGIN_FAMILY_PREFIX = "x-"

# What a model may report about its fit beyond the harness's own timings (see FittedModel).
FitInfoValue = Union[int, float, str]


def check_family(family: str, where: str) -> None:
    """Raise :class:`PluginError` unless ``family`` is in :data:`FAMILIES` or starts with ``x-``."""
    if family in FAMILIES:
        return
    if (isinstance(family, str) and family.startswith(PLUGIN_FAMILY_PREFIX)
            and len(family) > len(PLUGIN_FAMILY_PREFIX) and family == family.lower()
            and " " not in family):
        return
    raise PluginError(f"{where}: unknown model family {family!r}; use one of "
                      f"{', '.join(FAMILIES)}, or declare your own as "
                      f"'{PLUGIN_FAMILY_PREFIX}<name>' (lower case)."
                      f"{did_you_mean(str(family), FAMILIES)}")


def _subset(values: Iterable[str], allowed: tuple[str, ...], what: str, where: str,
            non_empty: bool) -> frozenset[str]:
    if isinstance(values, str):  # frozenset("ranking") would be a set of letters
        raise PluginError(f"{where}: {what} must be a set of names such as "
                          f"frozenset({{{values!r}}}), not the string {values!r}")
    out = frozenset(values)
    bad = sorted(out - set(allowed))
    if bad or (non_empty and not out):
        raise PluginError(f"{where}: {what} must be a {'non-empty ' if non_empty else ''}subset of "
                          f"{allowed}, got {sorted(out)}")
    return out


@dataclass(frozen=True)
class NoConfig:
    """Config type for a component without options."""


# ---------------------------------------------------------------- models


@runtime_checkable
class FittedModel(Protocol):
    """A trained model. ``score`` must be a pure function of the batch, jit-friendly, float32.

    Optional attribute ``fit_info: dict[str, int | float | str]``: the one place where a model
    reports facts about its fit that the harness cannot measure, e.g. ``epochs_run``,
    ``best_epoch``, ``epoch_s``, ``valid_s``. The runner stores it as ``record["fit_info"]``
    unchanged; the harness's own timings (compile, fit, score) are measured by the runner and
    must not be reported here. Read it with :func:`fit_info`. (A protocol cannot declare an
    optional attribute, so it is declared by :class:`ReportsFitInfo`.)

    Optional method ``state() -> pytree``: the trained state (nested dicts / lists of arrays and
    int / float / str values) that, with the config, is all ``score`` needs. With the model's
    ``restore`` (see :class:`Model`) it lets ``recbench run --save-models`` save the fitted model
    next to its trial, and ``recbench recommend`` serve from it without retraining. A dataclass
    fitted model gets both from :class:`recbench.api.DataclassState`.
    """

    def score(self, batch: UserBatch) -> jax.Array:
        """Scores for every item: ``[B, n_items]`` float32. Higher ranks first."""
        ...


@runtime_checkable
class RatingModel(FittedModel, Protocol):
    """A fitted model that also predicts single (user, item) pairs: needed for the ``rating`` and
    ``binary`` tasks. Test with ``isinstance(fitted, RatingModel)``."""

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Predicted rating (task ``rating``) or probability (task ``binary``) per pair, ``[N]``."""
        ...


@runtime_checkable
class ReportsFitInfo(Protocol):
    """A fitted model that reports extras about its fit (see :class:`FittedModel`)."""

    fit_info: Mapping[str, FitInfoValue]


def fit_info(fitted: Any, where: str = "model") -> dict[str, FitInfoValue]:
    """``fitted.fit_info`` checked (str keys; int, float or str values) and copied; ``{}`` if the
    model reports none."""
    info = getattr(fitted, "fit_info", None)
    if info is None:
        return {}
    if not isinstance(info, Mapping):
        raise ModelError(f"{where}: fit_info must be a dict of str -> int | float | str, got "
                         f"{type(info).__name__}; return the extras as a plain dict")
    out: dict[str, FitInfoValue] = {}
    for k, v in info.items():
        if hasattr(v, "item") and getattr(v, "shape", None) == ():
            v = v.item()  # a numpy or JAX scalar
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ModelError(f"{where}: fit_info[{k!r}] = {v!r} ({type(v).__name__}); keys must be "
                             "str and values int, float or str (convert arrays with float())")
        if isinstance(v, float) and not math.isfinite(v):
            raise ModelError(f"{where}: fit_info[{k!r}] is {v}; values must be finite")
        out[k] = v
    return out


class Model(Protocol):
    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> FittedModel:
        """Train on ``train`` (never on test data); ``key`` is the only source of randomness."""
        ...

    # Optional: ``restore(state) -> FittedModel`` (:class:`RestoresState`) rebuilds the fitted
    # model whose ``state()`` (:class:`SavesState`) was saved, on a model made by the factory from
    # the same config and context.


@runtime_checkable
class SavesState(Protocol):
    """A fitted model that can be saved: ``state()`` is a pytree of arrays and plain values that
    :mod:`recbench.modelstate` writes (see docs/hooks.md, "Saving a fitted model: state and restore")."""

    def state(self) -> Any: ...


@runtime_checkable
class RestoresState(Protocol):
    """A model that rebuilds its fitted model from a saved :meth:`SavesState.state`."""

    def restore(self, state: Any) -> FittedModel: ...


@dataclass(frozen=True)
class ModelSpec:
    """A model plugin's registration.

    ``factory(config, context)`` returns a :class:`Model`; ``context`` gives the dataset's side
    information (features) so content models can use it.
    """

    name: str
    family: str  # the primary family: one of FAMILIES, or "x-<name>" declared by the plugin
    tasks: frozenset[Task]  # any iterable of TASKS is accepted and stored as a frozenset
    factory: Callable[[Any, ModelContext], Model]
    config: type = NoConfig
    description: str = ""
    # What the data must have: any of REQUIREMENTS. A trial on data without it fails with a clear
    # message before fitting, and default experiments leave the model out.
    requires: frozenset[Requirement] = frozenset()
    # Further families the model also belongs to (a two-tower model: family="hybrid",
    # families=("cnn",)); same rules as ``family``. Leaderboards group by ``family``.
    families: tuple[str, ...] = ()
    # Whether the model scores an item from its features alone, without interactions (content
    # and hybrid models). On a cold-item split (every test item unseen in training) a model that
    # cannot is recorded as status "unsupported" ("cannot serve cold items"), never fitted.
    cold_items: bool = False

    def __post_init__(self) -> None:
        where = f"model {self.name!r}"
        object.__setattr__(self, "tasks", _subset(self.tasks, TASKS, "tasks", where, True))
        object.__setattr__(self, "requires",
                           _subset(self.requires, REQUIREMENTS, "requires", where, False))
        if isinstance(self.families, str):
            raise PluginError(f"{where}: families must be a tuple of names, e.g. "
                              f"({self.families!r},), not a string")
        object.__setattr__(self, "families", tuple(self.families))
        for family in (self.family, *self.families):
            check_family(family, where)
        if self.family in self.families:
            raise PluginError(f"{where}: family {self.family!r} is repeated in families; list "
                              "only the further families there")
        if not callable(self.factory):
            raise PluginError(f"{where}: factory must be callable (config, ModelContext) -> model")

    @property
    def all_families(self) -> tuple[str, ...]:
        """``(family, *families)``."""
        return (self.family, *self.families)


def missing_requirements(spec: ModelSpec, dataset: Dataset) -> list[str]:
    """The requirements of ``spec`` that ``dataset`` does not meet."""
    x = dataset.interactions
    have = {"ratings": x.rating is not None, "timestamps": x.timestamp is not None,
            "item_features": dataset.item_features is not None,
            "user_features": dataset.user_features is not None}
    return [r for r in sorted(spec.requires) if not have[r]]


@dataclass(frozen=True)
class ModelContext:
    """What the harness hands a model factory besides its config."""

    n_users: int
    n_items: int
    item_features: FeatureTable | None = None
    user_features: FeatureTable | None = None
    task: Task = "ranking"  # what the model is trained for: "rating" predicts ratings, "binary" probabilities
    binary_threshold: float = 4.0  # task "binary": a rating >= this is a positive (the protocol's)
    # One text per item (str, "" when the item has none), aligned with internal ids: the dataset's
    # ``item_info`` column named by ITEM_TEXT_COLUMNS (the first one present), else None.
    item_text: np.ndarray | None = None
    # protocol.candidates: the items a test user ranks, "all" or "cold" (only the test part's items
    # without training interactions). A model's early stopping ranks its validation part the same
    # way: ``ranking_validator(..., candidates=context.candidates)``.
    candidates: Literal["all", "cold"] = "all"


# Where a dataset keeps item text, in order of preference: online-retail's descriptions, then
# MovieLens's titles. ``item_text_of`` picks the first present.
ITEM_TEXT_COLUMNS: tuple[str, ...] = ("text", "description", "title")


def item_text_of(dataset: Dataset) -> np.ndarray | None:
    """The item text a content model gets (see :class:`ModelContext`): str per item, or None."""
    for name in ITEM_TEXT_COLUMNS:
        if name in dataset.item_info:
            values = dataset.item_info[name]
            return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v)
                             for v in values], dtype=object)
    return None


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetCard:
    """Provenance of a dataset: shown by `recbench plugins` and stored with results."""

    description: str
    source: str = ""
    license: str = ""
    citation: str = ""
    # BibTeX entries a paper that uses the dataset must cite (``recbench cite`` prints them);
    # without it, ``citation`` is printed as a @misc note.
    bibtex: str = ""


@dataclass(frozen=True)
class LoadContext:
    """Where a dataset plugin may read and cache files; the harness chooses these paths."""

    data_dir: Path | None
    cache_dir: Path


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset plugin's registration.

    ``load(config, context)`` returns a :class:`Dataset`. ``fingerprint(config, context)``, when
    given, returns a cheap content hash of the source (e.g. the sha256 of the ratings file); the
    harness then caches the parsed dataset in binary form under that key, so later loads skip
    parsing. Without it, every load parses.
    """

    name: str
    load: Callable[[Any, LoadContext], Dataset]
    card: DatasetCard
    config: type = NoConfig
    fingerprint: Callable[[Any, LoadContext], str] | None = None


# ---------------------------------------------------------------- splitters


@dataclass(frozen=True)
class SplitterSpec:
    """``split(interactions, config, rng) -> Split``; all randomness from ``rng``.

    With ``takes_dataset=True`` the first argument is the whole :class:`Dataset` instead (original
    ids, features, side columns), for splits defined outside the interactions, e.g. given files.
    ``fingerprint(config) -> str``, when given, is a content hash of the inputs the config names
    (e.g. the sha256 of given split files): it goes into every trial's key, so changed files are
    never served the numbers of the old ones.
    """

    name: str
    split: Callable[[Any, Any, np.random.Generator], Split]
    config: type = NoConfig
    description: str = ""
    takes_dataset: bool = False
    fingerprint: Callable[[Any], str] | None = None


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class RankingContext:
    """Everything a ranking metric sees, for ``U`` evaluated users (rows align).

    ``topk[u]`` are the ``k_max`` best unseen items (ties broken by lower item index),
    ``hits[u, r]`` whether ``topk[u, r]`` is a test item, ``n_relevant[u]`` the user's number of test
    items, ``n_candidates[u]`` the number of items ranked (all minus masked), and
    ``relevant_ranks[u, j]`` the 0-based rank of test item ``j`` among the candidates (-1 = padding;
    only filled when a metric declares ``needs_ranks``), and ``item_popularity[i]`` the number of
    training interactions of item ``i`` (``[n_items]`` int64; the training part the model was fit
    on, not validation or test), for novelty and popularity-bias metrics.
    """

    users: np.ndarray
    topk: np.ndarray
    hits: np.ndarray
    n_relevant: np.ndarray
    n_candidates: np.ndarray
    n_items: int
    relevant_ranks: np.ndarray | None = None
    item_popularity: np.ndarray | None = None  # always set by the evaluator; None only in hand-built contexts


@dataclass(frozen=True)
class PointContext:
    """Rating or binary predictions for ``N`` test pairs: ``target`` is a rating or a 0/1 label."""

    users: np.ndarray
    items: np.ndarray
    target: np.ndarray
    prediction: np.ndarray


@dataclass(frozen=True)
class MetricSpec:
    """A metric plugin's registration.

    ``compute(context, k)`` returns per-user values ``[U]`` (``per_user=True``; the metric is their
    mean) or one float (``per_user=False``, e.g. coverage or a global RMSE). ``k`` is None for metrics
    with ``uses_k=False``.
    """

    name: str
    task: Task
    higher_is_better: bool
    compute: Callable[[Any, int | None], np.ndarray | float]
    uses_k: bool = True
    per_user: bool = True
    needs_ranks: bool = False
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise PluginError(f"metric {self.name!r}: task must be one of {TASKS}, got {self.task!r}")


@dataclass(frozen=True)
class Deferred:
    """Specs a plugin names at registration and builds on first use: a registration hook may
    return these next to (or instead of) specs. ``load()`` returns specs of the hook's kind, one
    per name in ``names``, typically by importing the module that defines them, so a run that
    uses none of them never pays for that module's imports (the built-in models' took about 1 s
    of every process's start-up). The names are known at once (listing, "did you mean",
    clashes); a ``load`` that fails or returns other names fails the lookup of each of them with
    a :class:`~recbench.errors.PluginError`, and the plugin's other names still work."""

    names: tuple[str, ...]
    load: Callable[[], Iterable[Any]]

    def __post_init__(self) -> None:
        names = self.names
        if not isinstance(names, (tuple, list)) or not names or len(set(names)) != len(names):
            raise PluginError(f"Deferred names must be a non-empty tuple of distinct names, got "
                              f"{names!r}")
        if not callable(self.load):
            raise PluginError(f"Deferred load must be callable, got {self.load!r}")
        object.__setattr__(self, "names", tuple(names))
