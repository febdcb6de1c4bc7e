"""Test-wide settings: strict dtype promotion, several host devices, caches in a temp dir, and the
one rule for tests that need the real data sets in ``../shared/datasets``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Before JAX initialises: several CPU devices so sharded code paths run, and programs compiled
# without LLVM's optimisation passes and without XLA:CPU's MLIR fusion emitters. On the tests' tiny
# data compilation is most of the suite's time (69% at the default level); level 0 cuts it by 40%
# and the suite by a quarter (337 -> 254 s on 2 cores); the classic fusion emitters halve what is
# left (the contract kit on deepfm, sasrec and gru4rec: 27.4 -> 13.9 s of compilation). The numbers
# agree with the default build's up to float32 rounding (~1e-7 relative: tests/test_xla_levels.py),
# and the stored reference tables reproduce to the digit. Subprocesses inherit the flags.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4 "
                                   "--xla_backend_optimization_level=0 "
                                   "--xla_cpu_use_fusion_emitters=false")
os.environ.setdefault("RECBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="recbench-test-cache-"))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")

DATA_VAR = "RECBENCH_TEST_DATA"


def shared_data_root() -> Path:
    """``$RECBENCH_TEST_DATA``, else ``../shared/datasets`` next to the checkout."""
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    return Path(os.environ.get(DATA_VAR) or default)


def require_shared_data(*relative: str) -> Path:
    """The shared data folder, after checking that each ``relative`` path exists in it.

    Missing data skips the test with a reason naming the variable to set; under CI (``CI=true``)
    it fails instead, so a CI run never passes by skipping its real-data tests.
    """
    root = shared_data_root()
    missing = [r for r in relative or ("",) if not (root / r).exists()]
    if missing:
        message = (f"real test data missing: {', '.join(str(root / m) for m in missing)}; set "
                   f"{DATA_VAR} to a folder holding {', '.join(relative) or 'the data sets'} "
                   f"(a copy of ../shared/datasets)")
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return root


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared_data(*paths): the test reads these paths under RECBENCH_TEST_DATA "
                   "(default ../shared/datasets); skipped when missing, failed under CI=true")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before fixtures are set up, so a module fixture that parses the real data is never reached.
    for mark in item.iter_markers("shared_data"):
        require_shared_data(*mark.args)


@pytest.fixture(scope="session")
def shared_data():
    """``shared_data("ml-100k", ...)`` -> the shared data folder, or skip (fail under CI)."""
    return require_shared_data


@pytest.fixture(scope="session")
def registry():
    from recbench.plugins import load_plugins
    from recbench.registry import Registry

    return Registry.build(load_plugins(allow=set()))


@pytest.fixture(scope="session")
def install_offline(tmp_path_factory):
    """``install_offline(src) -> site``: pip-install the distribution at ``src`` (no deps, no index,
    this venv's setuptools) into a fresh target directory, as a user would install a plugin.

    Builds from a copy, since setuptools writes build/ and *.egg-info next to the sources; needs
    setuptools >= 70.1 (``bdist_wheel``) or the ``wheel`` package in this environment.
    """
    def install(src: Path) -> Path:
        tmp = tmp_path_factory.mktemp(src.name)
        copy = tmp / "src"
        shutil.copytree(src, copy,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        target = tmp / "site"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
             "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
             str(copy)], capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            pytest.fail(f"pip could not install {src} offline (building it needs setuptools >= "
                        f"70.1 or the `wheel` package in this environment):\n"
                        + proc.stdout[-3000:] + proc.stderr[-3000:])
        return target

    return install
