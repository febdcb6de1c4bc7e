"""What made a number: package versions, code fingerprints, hardware, git commit, memory peaks.

Code fingerprints: a version number pins code only when the code is an installed release. A plugin
file (``--plugin file.py``), an editable install (``pip install -e``) or a development checkout of
recbench itself can change without a version bump, so trial keys carry a hash of the code:

- :func:`core_code` - recbench + recbench_builtin: a hash of their ``.py`` sources when they run
  from a checkout or an editable install, else ``"recbench <version>"``;
- :func:`distribution_code` - an installed plugin distribution: a hash of its package's ``.py``
  sources when its module is not one of the files the installer recorded (editable / source), else
  a hash of its ``RECORD`` (the installer's sha256 of every installed file);
- :func:`file_code` - a plugin file: a hash of that file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax

from .fileio import digest_bytes, digest_file

# scikit-learn: the content models' text features (its vectorizers' vocabulary and tie order).
PACKAGES = ("recbench", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "pandas", "pluggy",
            "scikit-learn")


@functools.cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


@functools.cache
def git_commit() -> str | None:
    """The commit of recbench's source checkout, when it runs from one."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def hardware(device: jax.Device) -> dict[str, Any]:
    """The machine a trial runs on, with the load average at the moment of the call (the start of
    the trial): timings from a loaded machine are otherwise indistinguishable from a slow one."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        load = None
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device_count": jax.device_count(device.platform), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "system": sys.platform,
            **cpu(), "load_average_1_5_15m": load}


@functools.cache
def cpu() -> dict[str, Any]:
    """CPU model, physical cores, hardware threads and the threads this process may use."""
    model, cores = _linux_cpu()
    if model is None and sys.platform == "darwin":
        model = _sysctl("machdep.cpu.brand_string")
        cores = cores or int(_sysctl("hw.physicalcpu") or 0) or None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {"cpu_model": model or platform.processor() or platform.machine(),
            "cpu_physical_cores": cores, "cpu_threads": os.cpu_count(),
            "cpu_usable_threads": usable}


def _linux_cpu() -> tuple[str | None, int | None]:
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return None, None


def parse_cpuinfo(text: str) -> tuple[str | None, int | None]:
    """(CPU model, physical core count) from the text of Linux's /proc/cpuinfo."""
    model = next(iter(re.findall(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", text, re.M)), None)
    # One (physical id, core id) pair per physical core; without them, count processors.
    pairs = set()
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "core id" in fields:
            pairs.add((fields.get("physical id", "0"), fields["core id"]))
    return (model.strip() if model else None), (len(pairs) or None)


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


# ------------------------------------------------------------------ code fingerprints


def _hash_sources(roots: list[Path]) -> str:
    """sha256 over every .py file under ``roots`` (a file or a package folder), names included."""
    h = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(f"{root.name}/{f.relative_to(root) if f != root else f.name}\0".encode())
            h.update(bytes.fromhex(digest_file(f)))
    return "source:" + h.hexdigest()[:16]


def _module_root(module: str) -> Path | None:
    """The package folder (or single file) that holds ``module``'s top-level package."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:  # a package (namespace packages: the first folder)
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin and spec.origin.endswith(".py") else None


def file_code(path: str | os.PathLike[str]) -> str:
    """Fingerprint of a plugin loaded from a file. Not cached: the file may change in-process."""
    return "file:" + digest_file(path)[:16]


def distribution_code(dist: md.Distribution, module: str) -> str:
    """Fingerprint of an installed plugin distribution whose entry point lives in ``module``."""
    return _distribution_code(dist, module)


@functools.cache
def _distribution_code_cached(name: str, version: str, module: str) -> str:
    return _distribution_code(md.distribution(name), module)


def _distribution_code(dist: md.Distribution, module: str) -> str:
    root = _module_root(module)
    installed = {str(Path(str(dist.locate_file(f))).resolve()) for f in (dist.files or [])}
    if root is not None:
        probe = root / "__init__.py" if root.is_dir() else root
        if str(probe) not in installed:  # editable or source: the version does not pin the code
            return _hash_sources([root])
    record = dist.read_text("RECORD")
    if record:
        return "record:" + digest_bytes(record.encode())[:16]
    return f"{dist.metadata['Name']} {dist.version}"  # nothing better to go on


def plugin_code(dist: md.Distribution | None, module: str) -> str:
    """:func:`distribution_code`, computed once per distribution and module in a process."""
    if dist is None:
        return "-"
    try:
        return _distribution_code_cached(dist.metadata["Name"], dist.version, module)
    except (md.PackageNotFoundError, OSError):
        return _distribution_code(dist, module)


def _is_development(dist_name: str, package: Path) -> bool:
    """Whether ``package`` runs from a checkout or an editable install rather than a release."""
    if (package.parent / "pyproject.toml").is_file() or (package.parent.parent / "pyproject.toml"
                                                         ).is_file():
        return True
    try:
        direct = md.distribution(dist_name).read_text("direct_url.json")
    except md.PackageNotFoundError:
        return True  # imported from a source tree on sys.path
    return bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))


@functools.cache
def core_code() -> str:
    """Fingerprint of recbench's own code: its sources' hash in a development checkout or editable
    install (code there changes without a version bump), else ``"recbench <version>"``."""
    import recbench
    import recbench_builtin

    core = Path(recbench.__file__).resolve().parent
    builtin = Path(recbench_builtin.__file__).resolve().parent
    if _is_development("recbench", core):
        return _hash_sources([core, builtin])
    return f"recbench {recbench.__version__}"


def reset_peak_host() -> str:
    """Start a new peak-memory window; returns the scope later peaks cover.

    Linux resets the resident-set high-water mark on writing "5" to /proc/self/clear_refs, so each
    trial gets its own peak ("trial"); elsewhere the peak is the process's so far ("process").
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "trial"
    except OSError:
        return "process"


def peak_host_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak_host` (or of the process)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_device_mb(device: jax.Device) -> float | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats or "peak_bytes_in_use" not in stats:
        return None  # the CPU backend does not track it
    return stats["peak_bytes_in_use"] / 2**20


def parameter_count(fitted: Any) -> int:
    """Number of float parameters in the fitted model's arrays (keys and integer tables excluded)."""
    leaves = jax.tree_util.tree_leaves(getattr(fitted, "__dict__", fitted))
    return int(sum(x.size for x in leaves
                   if hasattr(x, "dtype") and hasattr(x, "size")
                   and jax.numpy.issubdtype(x.dtype, jax.numpy.floating)))
