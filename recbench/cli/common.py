"""Shared CLI plumbing: the plugin host and registry, cache directories, JAX set-up."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from ..datacache import default_cache_dir
from ..plugins import load_plugins
from ..registry import Registry


def console(stderr: bool = False) -> Console:
    """A rich console; when piped, wide enough that tables are not cut at 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


cache_dir = default_cache_dir

# Exit codes of the `recbench` command (documented in `recbench --help` and recbench/cli/main.py).
EXIT_ERROR = 1  # a RecbenchError: bad input, a dataset that cannot be loaded, a failed check
EXIT_INTERNAL = 2  # a bug: an unexpected exception
EXIT_TRIALS_FAILED = 3  # `recbench run` finished, but some trials failed

def enable_compilation_cache() -> None:
    """Persist XLA executables across runs: repeated runs and tests skip recompilation."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def registry(ctx: click.Context) -> Registry:
    obj = ctx.find_root().obj
    if "registry" not in obj:
        host = load_plugins(paths=tuple(obj["plugin_paths"]))
        obj["registry"] = Registry.build(host)
    return obj["registry"]


def warn_plugin_errors(reg: Registry) -> None:
    for info in reg.host.errors:
        click.secho(f"warning: plugin {info.name} ({info.distribution}): {info.error}",
                    fg="yellow", err=True)
    for message in reg.clashes.values():
        click.secho(f"warning: {message}", fg="yellow", err=True)
