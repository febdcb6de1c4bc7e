"""Built-in dataset plugin: every submodule's ``SPECS`` (see ``_collect.py``)."""

from __future__ import annotations

import sys

from recbench.api import DatasetSpec, hookimpl

from .._collect import collect_specs


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return collect_specs(sys.modules[__name__])
