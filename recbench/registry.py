"""Name -> spec for every model, dataset, metric and splitter, with the plugin that registered it.

Each plugin's registration hook is called on its own, so one plugin that raises or returns the wrong
type is recorded as failed while the others register. A name registered by two plugins is removed
and reported with both distributions; using it raises that error. Names a hook returns as a
:class:`~recbench.specs.Deferred` are registered at once; their specs are built on first use.

Specs are looked up by kind through typed accessors (:meth:`Registry.model`,
:meth:`~Registry.dataset`, :meth:`~Registry.metric`, :meth:`~Registry.splitter`), each returning
the spec type of its kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import PluginError, unknown_name
from .plugins import PluginHost, format_exception
from .specs import (
    REQUIREMENTS,
    TASKS,
    DatasetSpec,
    Deferred,
    MetricSpec,
    ModelSpec,
    SplitterSpec,
)

KINDS: dict[str, tuple[str, type]] = {
    "model": ("register_models", ModelSpec),
    "dataset": ("register_datasets", DatasetSpec),
    "metric": ("register_metrics", MetricSpec),
    "splitter": ("register_splitters", SplitterSpec),
}


S = TypeVar("S")


class _Pending:
    """The specs of one :class:`~recbench.specs.Deferred`, loaded and checked on first use; a
    failure is recorded on its plugin (``recbench plugins`` shows it) and raised for each name."""

    def __init__(self, deferred: Deferred, kind: str, spec_type: type, info: Any):
        self.deferred, self.kind, self.spec_type, self.info = deferred, kind, spec_type, info
        self._specs: dict[str, Any] | None = None
        self._failure: tuple[str, Exception] | None = None  # message, cause

    def spec(self, name: str) -> Any:
        if self._specs is None and self._failure is None:
            try:
                specs = _checked(self.kind, self.spec_type, self.deferred.load())
                loaded = [s.name for s in specs]
                if sorted(loaded) != sorted(self.deferred.names):
                    raise PluginError(f"it declared {sorted(self.deferred.names)} but loaded "
                                      f"{sorted(loaded)}")
                self._specs = {s.name: s for s in specs}
            except Exception as e:  # noqa: BLE001 - recorded, raised for each of its names
                message = (f"{self.kind}s {', '.join(self.deferred.names)} of plugin "
                           f"{self.info.name} failed to load: {format_exception(e)}")
                self._failure = (message, e)
                self.info.error = (self.info.error + "; " if self.info.error else "") + message
        if self._failure is not None:  # a fresh error each time, caused by the original one
            raise PluginError(self._failure[0]) from self._failure[1]
        assert self._specs is not None
        return self._specs[name]


@dataclass(frozen=True)
class Entry:
    """One registered name: its spec (built on first use where it was registered
    :class:`~recbench.specs.Deferred`) and where it came from.

    ``code`` fingerprints the code behind it wherever ``version`` does not pin it (a plugin file,
    an editable install, a recbench checkout; see :mod:`recbench.provenance`): trial keys need both.
    """

    name: str
    source: Any  # the spec, or the _Pending that builds it
    plugin: str
    distribution: str
    version: str
    code: str

    @property
    def spec(self) -> Any:
        return self.source.spec(self.name) if isinstance(self.source, _Pending) else self.source


@dataclass
class Registry:
    host: PluginHost
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    clashes: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def build(cls, host: PluginHost) -> Registry:
        reg = cls(host, {kind: {} for kind in KINDS})
        for kind, (hook_name, spec_type) in KINDS.items():
            for impl in getattr(host.pm.hook, hook_name).get_hookimpls():
                reg._collect(kind, spec_type, impl)
        return reg

    def _collect(self, kind: str, spec_type: type, impl: Any) -> None:
        info = self.host.info(impl.plugin_name)
        named: list[tuple[str, Any]] = []  # (name, spec or _Pending)
        try:
            returned = list(impl.function() or [])
            deferred = [d for d in returned if isinstance(d, Deferred)]
            specs = [r for r in returned if not isinstance(r, Deferred)]
            named += [(s.name, s) for s in _checked(kind, spec_type, specs)]
            for d in deferred:
                pending = _Pending(d, kind, spec_type, info)
                for name in d.names:
                    _check_name(kind, name)
                    named.append((name, pending))
        except Exception as e:  # noqa: BLE001 - one plugin's failure is recorded, not raised
            info.error = (info.error + "; " if info.error else "") + \
                f"{impl.function.__name__}() failed: {format_exception(e)}"
            return
        table = self.entries[kind]
        for name, source in named:
            if (kind, name) in self.clashes:
                self.clashes[(kind, name)] += f", {info.distribution}"
                continue
            if name in table:
                first = table.pop(name)
                self.clashes[(kind, name)] = (
                    f"{kind} {name!r} is registered by two plugins: {first.plugin} "
                    f"(distribution {first.distribution}) and {info.name} "
                    f"(distribution {info.distribution}); uninstall one or disable it with "
                    f"RECBENCH_LOAD_PLUGINS")
                continue
            table[name] = Entry(name, source, info.name, info.distribution, info.version,
                                info.code)
            info.contributes.setdefault(kind + "s", []).append(name)

    def get(self, kind: str, name: str) -> Entry:
        if (kind, name) in self.clashes:
            raise PluginError(self.clashes[(kind, name)])
        try:
            return self.entries[kind][name]
        except KeyError:
            raise unknown_name(kind, name, self.entries[kind]) from None

    def _typed(self, kind: str, name: str, spec_type: type[S]) -> S:
        spec = self.get(kind, name).spec
        assert isinstance(spec, spec_type)  # checked when registered
        return spec

    def model(self, name: str) -> ModelSpec:
        return self._typed("model", name, ModelSpec)

    def dataset(self, name: str) -> DatasetSpec:
        return self._typed("dataset", name, DatasetSpec)

    def metric(self, name: str) -> MetricSpec:
        return self._typed("metric", name, MetricSpec)

    def splitter(self, name: str) -> SplitterSpec:
        return self._typed("splitter", name, SplitterSpec)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def usable(self, kind: str) -> list[str]:
        """The names whose specs build: for commands that use every spec of a kind (listings,
        comparisons). Builds each deferred spec; one that fails is left out, its error recorded
        on its plugin."""
        usable = []
        for name in self.names(kind):
            try:
                self.entries[kind][name].spec  # noqa: B018 - builds it
            except PluginError:
                continue
            usable.append(name)
        return usable


def _checked(kind: str, spec_type: type, specs: Iterable[Any]) -> list[Any]:
    """``specs`` as a list, each of ``spec_type`` and valid (else a PluginError)."""
    specs = list(specs)
    for s in specs:
        if not isinstance(s, spec_type):
            raise PluginError(f"returned {type(s).__name__}, expected {spec_type.__name__}")
        _validate(kind, s)
    return specs


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name or name.strip() != name:
        raise PluginError(f"{kind} name must be a non-empty string without spaces, got {name!r}")


def _validate(kind: str, spec: Any) -> None:
    _check_name(kind, spec.name)
    if kind == "model":
        bad = set(spec.tasks) - set(TASKS)
        if not spec.tasks or bad:
            raise PluginError(f"model {spec.name!r}: tasks must be a non-empty subset of {TASKS}")
        if set(spec.requires) - set(REQUIREMENTS):
            raise PluginError(f"model {spec.name!r}: requires must be a subset of {REQUIREMENTS}")
    if kind == "metric" and spec.task not in TASKS:
        raise PluginError(f"metric {spec.name!r}: task must be one of {TASKS}, got {spec.task!r}")
