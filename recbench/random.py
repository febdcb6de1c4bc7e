"""Seed derivation: one root seed per run, every key derived from it and the purpose it serves.

A purpose is a tuple of strings/ints (e.g. ("split", "ml-100k", 0)); the derived seed is a stable
SHA-256 of the root and the purpose, never Python's salted ``hash()``. No global state is touched.
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np


def derive_seed(root: int, *purpose: str | int) -> int:
    """A 63-bit seed that depends only on ``root`` and ``purpose``."""
    text = "\x1f".join([str(int(root)), *(str(p) for p in purpose)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def derive_key(root: int, *purpose: str | int) -> jax.Array:
    """A typed JAX key (``jax.random.key``) for ``purpose``."""
    return jax.random.key(derive_seed(root, *purpose) % (2**32))


def derive_rng(root: int, *purpose: str | int) -> np.random.Generator:
    """A host-side numpy Generator for ``purpose``."""
    return np.random.Generator(np.random.PCG64(derive_seed(root, *purpose)))
