"""What made a number: package versions, hardware, git commit, memory peaks."""

from __future__ import annotations

import functools
import importlib.metadata as md
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax

PACKAGES = ("recbench", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "pandas", "pluggy")


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
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device_count": jax.device_count(device.platform), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "system": sys.platform}


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
