"""Deprecated location of the built-in split protocols; they are plugins now.

The splitters live in ``recbench_builtin.splitting`` (registered by entry point like every other
built-in). This module only re-exports them so that code written against ``recbench.split`` keeps
working until it is migrated; it will be removed. Nothing in the core imports it.
"""

from __future__ import annotations

from recbench_builtin.splitting._parts import TEST, TRAIN, VALID, part_sizes
from recbench_builtin.splitting.protocols import (
    SPECS,
    ColdItemsConfig,
    KFoldConfig,
    LeaveLastOutConfig,
    RatioConfig,
    TemporalConfig,
    cold_items,
    kfold,
    leave_last_out,
    ratio,
    temporal,
)

SPLITTERS = SPECS

__all__ = [
    "SPLITTERS", "TEST", "TRAIN", "VALID", "ColdItemsConfig", "KFoldConfig", "LeaveLastOutConfig",
    "RatioConfig", "TemporalConfig", "cold_items", "kfold", "leave_last_out", "part_sizes",
    "ratio", "temporal",
]
