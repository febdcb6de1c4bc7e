"""recbench: comparative, reproducible benchmarking of recommender systems.

The plugin API is :mod:`recbench.api` (import from there); this package re-exports its most used
names for convenience. Everything else under ``recbench.`` is private. See docs/hooks.md and
docs/plugin-tutorial.md.
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
    RatingModel,
    SplitterSpec,
)

__version__ = "0.1.0"

__all__ = [
    "Dataset", "DatasetCard", "DatasetSpec", "FeatureTable", "FittedModel", "Interactions",
    "LoadContext", "MetricSpec", "ModelContext", "ModelSpec", "NoConfig", "PointContext",
    "RankingContext", "RatingModel", "RecbenchError", "Split", "SplitterSpec", "UserBatch", "hookimpl",
    "__version__",
]
