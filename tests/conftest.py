"""Test-wide settings: strict dtype promotion, several host devices, caches in a temp dir."""

from __future__ import annotations

import os
import tempfile

# Before JAX initialises: several CPU devices so sharded code paths run, a private compile cache.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("RECBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="recbench-test-cache-"))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(scope="session")
def registry():
    from recbench.plugins import load_plugins
    from recbench.registry import Registry

    return Registry.build(load_plugins(allow=set()))
