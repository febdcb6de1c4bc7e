"""The plugin API: everything a plugin may import from recbench, and nothing else.

Plugins (the built-ins too) import only from this module::

    from recbench.api import ModelSpec, Interactions, UserBatch, hookimpl, check

Names here keep their meaning across minor versions. Every other ``recbench.*`` module is private:
it may change without notice, and ``tests/test_public_api.py`` fails when a built-in plugin
imports one. The groups:

- hook marker: ``hookimpl``;
- specs and contexts a plugin returns or receives (:mod:`recbench.specs`; ``Deferred`` for specs
  built on first use), with the task,
  requirement and family vocabularies and :func:`fit_info`;
- data containers (:mod:`recbench.data`);
- errors to raise (each derives from :class:`RecbenchError`) and ``did_you_mean``;
- config helpers: ``check`` (validation in ``__post_init__``), ``to_dict``;
- seed derivation: ``derive_seed``, ``derive_key``, ``derive_rng``;
- file helpers for dataset plugins (:mod:`recbench.fileio`, :mod:`recbench.download`): ``digest_file``,
  ``digest_bytes``, ``file_sha256``, ``read_bytes``, ``decode_text``, ``text_encoding``,
  ``MISSING_VALUES``, ``atomic_write``, ``fetch``, ``extract``, ``download_dir``;
- training helpers for gradient models (:mod:`recbench.train`, see docs/train-models.md);
- evaluation helpers: ``evaluate_ranking``, ``EvalResult``, ``padded_lists``;
- saving fitted models: ``DataclassState`` (``state()`` / ``from_state`` for a dataclass fitted
  model) and ``restores`` (its model's ``restore``); see :mod:`recbench.modelstate`;
- the contract kit for tests: ``check_model``, ``tiny_dataset``, ``ContractError``;
- what lifecycle hooks receive: ``Experiment``, ``PlannedTrial``, ``TrialRecord``.

The training, evaluation, download and testing names are imported on first use, so a metric or
dataset plugin that needs none of them does not pay for importing optax or the plugin loader.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import check, to_dict
from .data import Dataset, FeatureTable, Interactions, Split, UserBatch
from .errors import (
    ConfigError,
    DataError,
    ModelError,
    PluginError,
    RecbenchError,
    did_you_mean,
)
from .fileio import (
    MISSING_VALUES,
    atomic_write,
    decode_text,
    digest_bytes,
    digest_file,
    file_sha256,
    read_bytes,
    text_encoding,
)
from .hookspecs import hookimpl
from .random import derive_key, derive_rng, derive_seed
from .specs import (
    FAMILIES,
    REQUIREMENTS,
    TASKS,
    DatasetCard,
    DatasetSpec,
    Deferred,
    FitInfoValue,
    FittedModel,
    LoadContext,
    MetricSpec,
    Model,
    ModelContext,
    ModelSpec,
    NoConfig,
    PointContext,
    RankingContext,
    RatingModel,
    ReportsFitInfo,
    Requirement,
    RestoresState,
    SavesState,
    SplitterSpec,
    Task,
    fit_info,
)

# name -> module, imported when the name is first looked up.
_LAZY: dict[str, str] = {
    **{name: "recbench.train" for name in (
        "FitResult", "fit_loop", "cached_optimizer", "sample_negatives",
        "csr_positives", "is_positive", "ranking_validator", "epoch_batches", "masked_mean",
        "shuffle")},
    "bucket_size": "recbench.shapes",
    **{name: "recbench.evaluate" for name in ("EvalResult", "evaluate_ranking", "padded_lists")},
    **{name: "recbench.download" for name in ("fetch", "extract", "download_dir")},
    **{name: "recbench.modelstate" for name in ("DataclassState", "restores")},
    **{name: "recbench.testing" for name in ("check_model", "tiny_dataset", "ContractError")},
    # What lifecycle hooks receive.
    **{name: "recbench.records" for name in ("PlannedTrial", "TrialRecord")},
    "Experiment": "recbench.config",
}

_EAGER = [
    "ConfigError", "DataError", "Dataset", "DatasetCard", "DatasetSpec", "Deferred", "FAMILIES",
    "FeatureTable", "FitInfoValue", "FittedModel", "Interactions", "LoadContext", "MetricSpec",
    "Model", "ModelContext", "ModelError", "ModelSpec", "NoConfig", "PluginError",
    "PointContext", "REQUIREMENTS", "RankingContext", "RatingModel", "RecbenchError",
    "ReportsFitInfo", "Requirement", "RestoresState", "SavesState", "Split", "SplitterSpec",
    "TASKS", "Task", "UserBatch",
    "MISSING_VALUES", "atomic_write", "check", "decode_text", "digest_bytes", "derive_key", "derive_rng", "derive_seed", "did_you_mean",
    "digest_file", "file_sha256", "fit_info", "hookimpl", "read_bytes", "text_encoding",
    "to_dict",
]

__all__ = sorted([*_EAGER, *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"recbench.api has no {name!r}; the plugin API is recbench.api.__all__ "
                             "(see docs/hooks.md, 'What a plugin may import')")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
