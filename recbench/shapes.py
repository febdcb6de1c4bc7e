"""Padded sizes: row counts rounded up to a few sizes per power of two, so that splits of one
dataset (seeds, folds) share their compiled programs. Kept apart from :mod:`recbench.train` so
that models without a training loop (EASE, iALS, kNN) pad without importing optax."""

from __future__ import annotations

import numpy as np


def bucket_size(n: int, minimum: int = 8) -> int:
    """``n`` rounded up to 4 steps per power of two (``8, 10, 12, 14, 16, 20, ...``; at most 25%
    padding): the padded sizes that splits of one dataset (seeds, folds) share, so that they share
    compiled code."""
    n = max(int(n), minimum)
    step = 1 << max(0, n.bit_length() - 3)
    return -(-n // step) * step


def pad_rows(values: np.ndarray, size: int, fill: int | float = 0) -> np.ndarray:
    """``values`` (first axis) padded with ``fill`` to ``size`` rows."""
    values = np.asarray(values)
    out = np.full((size, *values.shape[1:]), fill, values.dtype)
    out[:len(values)] = values
    return out
