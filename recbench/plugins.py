"""Plugin-manager factory: built-ins first, then third-party entry points, each isolated.

There is no module-global manager: every call to :func:`load_plugins` builds a fresh one. A plugin
that fails to import, implements a hook that does not exist (a misspelling) or with the wrong
arguments is unregistered and its error recorded; the others load normally.

``RECBENCH_LOAD_PLUGINS`` (comma-separated distribution or entry-point names) limits which
third-party plugins load; set to the empty string, only the built-ins load.

Every plugin carries ``code``, a fingerprint of the code it runs (see :mod:`recbench.provenance`):
trial keys include it, so changing a plugin file or an editable install re-runs its trials even
when its version number stays the same.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs, provenance
from .errors import PluginError, did_you_mean

ENTRY_POINT_GROUP = "recbench"
BUILTIN_DIST = "recbench"


@dataclass
class PluginInfo:
    """One plugin as `recbench plugins` shows it."""

    name: str
    distribution: str
    version: str
    source: str  # "builtin", "entry-point", "path" or "object"
    code: str = "-"  # fingerprint of the code that runs (recbench.provenance); "-" when unknown
    hooks: list[str] = field(default_factory=list)
    contributes: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class PluginHost:
    """A plugin manager plus what was loaded and what failed."""

    pm: pluggy.PluginManager
    plugins: list[PluginInfo]

    def info(self, plugin_name: str) -> PluginInfo:
        return next(p for p in self.plugins if p.name == plugin_name)

    @property
    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _spec_names() -> list[str]:
    return [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "recbench_spec")]


def _register(host: PluginHost, obj: Any, info: PluginInfo) -> None:
    """Register ``obj``; on any validation failure unregister it and record why."""
    pm = host.pm
    host.plugins.append(info)
    try:
        pm.register(obj, name=info.name)
    except Exception as e:  # noqa: BLE001 - recorded, never raised: one plugin cannot stop the rest
        info.error = f"rejected by the plugin manager: {e}"
        return
    try:
        pm.check_pending()  # earlier plugins passed, so a failure here is this plugin's
    except pluggy.PluginValidationError as e:
        pm.unregister(obj)
        hook = str(e).split("unknown hook")[-1].strip(" '").split("'")[0]
        info.error = (f"implements unknown hook {hook!r}.{did_you_mean(hook, _spec_names())} "
                      f"Known hooks: {', '.join(_spec_names())}")
        return
    info.hooks = sorted(h.name for h in pm.get_hookcallers(obj) or [])


def _allowed(ep: md.EntryPoint, dist: str, allow: set[str] | None) -> bool:
    return allow is None or ep.name in allow or dist in allow


def load_plugins(*, paths: tuple[str | Path, ...] = (), objects: tuple[Any, ...] = (),
                 entry_points: bool = True, allow: set[str] | None = None) -> PluginHost:
    """Build a plugin manager: built-ins, allowed entry points, then plugin files and objects.

    ``allow`` defaults to ``RECBENCH_LOAD_PLUGINS`` (None when unset = every installed plugin).
    """
    if allow is None and "RECBENCH_LOAD_PLUGINS" in os.environ:
        allow = {s.strip() for s in os.environ["RECBENCH_LOAD_PLUGINS"].split(",") if s.strip()}
    host = PluginHost(new_manager(), [])
    eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name) if entry_points else []
    builtins = [e for e in eps if e.dist is not None and e.dist.name == BUILTIN_DIST]
    others = [e for e in eps if e not in builtins]
    for ep in builtins + others:
        dist = ep.dist.name if ep.dist else "?"
        is_builtin = ep in builtins
        if not is_builtin and not _allowed(ep, dist, allow):
            continue
        info = PluginInfo(ep.name, dist, ep.dist.version if ep.dist else "?",
                          "builtin" if is_builtin else "entry-point",
                          provenance.core_code() if is_builtin else _entry_point_code(ep))
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - isolate import failures
            host.plugins.append(info)
            info.error = f"import of {ep.value} failed: {type(e).__name__}: {e}"
            continue
        _register(host, obj, info)
    for p in paths:
        p = Path(p)
        info = PluginInfo(p.stem, f"file:{p}", "-", "path")
        try:
            info.code = provenance.file_code(p)  # the bytes that are about to run
            obj = load_module_from_path(p)
        except Exception as e:  # noqa: BLE001
            host.plugins.append(info)
            info.error = f"loading {p} failed: {type(e).__name__}: {e}"
            continue
        _register(host, obj, info)
    for obj in objects:
        name = getattr(obj, "__name__", type(obj).__name__)
        _register(host, obj, PluginInfo(name, "<object>", "-", "object", _object_code(obj)))
    return host


def _entry_point_code(ep: md.EntryPoint) -> str:
    try:
        return provenance.plugin_code(ep.dist, ep.module)
    except Exception as e:  # noqa: BLE001 - an unreadable dist must not stop loading
        return f"unknown ({type(e).__name__})"


def _object_code(obj: Any) -> str:
    """An in-process plugin object: the hash of the file that defines it, when there is one."""
    try:
        source = inspect.getsourcefile(obj if inspect.ismodule(obj) or inspect.isclass(obj)
                                       else type(obj))
    except TypeError:  # built-in or dynamically created
        return "-"
    return provenance.file_code(source) if source and Path(source).is_file() else "-"


def load_module_from_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    mod_name = f"recbench_local_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[mod_name]
        raise
    return module


def format_exception(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()
