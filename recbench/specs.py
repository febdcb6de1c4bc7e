"""What plugins register: typed specs for models, datasets, metrics and splitters, and the model API.

A plugin returns these from its registration hooks (see :mod:`recbench.hookspecs`). Every spec
carries a frozen-dataclass config type with defaults; the harness validates user configs into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import jax
import numpy as np

from .data import Dataset, Interactions, Split, UserBatch

Task = Literal["ranking", "rating", "binary"]
TASKS: tuple[str, ...] = ("ranking", "rating", "binary")
REQUIREMENTS: tuple[str, ...] = ("ratings", "timestamps", "item_features", "user_features")


@dataclass(frozen=True)
class NoConfig:
    """Config type for a component without options."""


# ---------------------------------------------------------------- models


@runtime_checkable
class FittedModel(Protocol):
    """A trained model. ``score`` must be a pure function of the batch, jit-friendly, float32."""

    def score(self, batch: UserBatch) -> jax.Array:
        """Scores for every item: ``[B, n_items]`` float32. Higher ranks first."""
        ...


@runtime_checkable
class RatingModel(FittedModel, Protocol):
    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Predicted rating (task ``rating``) or probability (task ``binary``) per pair, ``[N]``."""
        ...


class Model(Protocol):
    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> FittedModel:
        """Train on ``train`` (never on test data); ``key`` is the only source of randomness."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """A model plugin's registration.

    ``factory(config, context)`` returns a :class:`Model`; ``context`` gives the dataset's side
    information (features) so content models can use it.
    """

    name: str
    family: str  # baseline, cf-user, cf-item, latent-factor, content, hybrid, cnn, rnn, lstm, attention
    tasks: frozenset[str]
    factory: Callable[[Any, ModelContext], Model]
    config: type = NoConfig
    description: str = ""
    # What the data must have: any of REQUIREMENTS. A trial on data without it fails with a clear
    # message before fitting, and default experiments leave the model out.
    requires: frozenset[str] = frozenset()


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
    item_features: Any = None
    user_features: Any = None
    task: str = "ranking"  # what the model is trained for: "rating" predicts ratings, "binary" probabilities
    binary_threshold: float = 4.0  # task "binary": a rating >= this is a positive (the protocol's)


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetCard:
    """Provenance of a dataset: shown by `recbench plugins` and stored with results."""

    description: str
    source: str = ""
    license: str = ""
    citation: str = ""


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
    """

    name: str
    split: Callable[[Any, Any, np.random.Generator], Split]
    config: type = NoConfig
    description: str = ""
    takes_dataset: bool = False


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class RankingContext:
    """Everything a ranking metric sees, for ``U`` evaluated users (rows align).

    ``topk[u]`` are the ``k_max`` best unseen items (ties broken by lower item index),
    ``hits[u, r]`` whether ``topk[u, r]`` is a test item, ``n_relevant[u]`` the user's number of test
    items, ``n_candidates[u]`` the number of items ranked (all minus masked), and
    ``relevant_ranks[u, j]`` the 0-based rank of test item ``j`` among the candidates (-1 = padding;
    only filled when a metric declares ``needs_ranks``).
    """

    users: np.ndarray
    topk: np.ndarray
    hits: np.ndarray
    n_relevant: np.ndarray
    n_candidates: np.ndarray
    n_items: int
    relevant_ranks: np.ndarray | None = None


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
    task: str
    higher_is_better: bool
    compute: Callable[[Any, int | None], np.ndarray | float]
    uses_k: bool = True
    per_user: bool = True
    needs_ranks: bool = False
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
