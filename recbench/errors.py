"""One exception tree. Every message says what failed, where, and what to do next."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecbenchError(Exception):
    """Base of every error recbench raises on purpose; the CLI prints it as one line."""


class ConfigError(RecbenchError):
    """A configuration (TOML, JSON, CLI option, model config) is malformed or out of range."""


class DataError(RecbenchError):
    """Input data is malformed: NaN, ids that do not map, empty users, a bad file."""


class PluginError(RecbenchError):
    """A plugin failed to load, registered a clashing name, or broke its contract."""


class UnknownNameError(RecbenchError):
    """A model, dataset, metric or splitter name that no plugin registered."""


class ModelError(RecbenchError):
    """A model returned something the harness cannot use (NaN, wrong shape, wrong dtype)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix listing close matches, or '' when there are none."""
    close = difflib.get_close_matches(name, sorted(choices), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    choices = sorted(choices)
    return UnknownNameError(
        f"unknown {kind} {name!r}.{did_you_mean(name, choices)} "
        f"Known {kind}s: {', '.join(choices) or '(none)'}; `recbench plugins` lists them all."
    )
