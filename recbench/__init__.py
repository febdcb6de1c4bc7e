"""recbench: comparative, reproducible benchmarking of recommender systems.

Plugins import what they need from here: ``hookimpl`` to mark hook implementations and the spec
types they return. See docs/hooks.md and docs/plugin-tutorial.md.
"""

from .data import Dataset, FeatureTable, Interactions, Split, UserBatch
from .errors import RecbenchError
from .hookspecs import hookimpl
from .specs import (
    DatasetCard,
    DatasetSpec,
    FittedModel,
    LoadContext,
    MetricSpec,
    ModelContext,
    ModelSpec,
    NoConfig,
    PointContext,
    RankingContext,
    SplitterSpec,
)

__version__ = "0.1.0"

__all__ = [
    "Dataset", "DatasetCard", "DatasetSpec", "FeatureTable", "FittedModel", "Interactions",
    "LoadContext", "MetricSpec", "ModelContext", "ModelSpec", "NoConfig", "PointContext",
    "RankingContext", "RecbenchError", "Split", "SplitterSpec", "UserBatch", "hookimpl",
    "__version__",
]
