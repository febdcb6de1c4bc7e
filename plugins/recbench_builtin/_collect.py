"""Each built-in plugin package collects the ``SPECS`` lists of its submodules.

A new model, dataset or splitter is one new module with a ``SPECS`` list; nothing else needs to
change (a model module listed in ``models.MODELS`` is imported only when one of its models is
first used). The built-ins import only ``recbench.api``, as a third-party plugin would
(``tests/test_public_api.py`` checks it).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection
from types import ModuleType
from typing import Any


def collect_specs(package: ModuleType, skip: Collection[str] = ()) -> list[Any]:
    """The ``SPECS`` of every public submodule of ``package`` but those in ``skip``, in
    module-name order."""
    specs: list[Any] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name not in skip:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            specs.extend(getattr(module, "SPECS", []))
    return specs
