"""Built-in model plugin: every submodule's ``SPECS`` (see ``_collect.py``)."""

from __future__ import annotations

import sys

from recbench.api import ModelSpec, hookimpl

from .._collect import collect_specs


@hookimpl
def register_models() -> list[ModelSpec]:
    return collect_specs(sys.modules[__name__])
