"""Built-in model plugin: every submodule's ``SPECS`` (see ``_collect.py``).

The submodules in ``MODELS`` are imported only when one of their models is first used: importing
them all (flax, optax and the networks among them) took about 1 s of every process's start-up, a
most-popular run's included. A submodule not listed is imported at once, so a new model needs no
entry here to work; ``tests/test_core_plugins.py`` checks the table against the ``SPECS``.
"""

from __future__ import annotations

import importlib
import sys
from functools import partial

from recbench.api import Deferred, ModelSpec, hookimpl

from .._collect import collect_specs

MODELS: dict[str, tuple[str, ...]] = {
    "content": ("content-knn", "category-popular"),
    "factorization": ("bpr", "biased-mf", "svdpp"),
    "hybrid": ("fm", "deepfm", "lightfm", "two-tower"),
    "linear": ("ease", "ease-lowrank", "ials"),
    "neighborhood": ("item-knn", "user-knn"),
    "neural_cf": ("neumf",),
    "sequential": ("sasrec", "gru4rec", "lstm", "caser"),
}


def _specs_of(module: str) -> list[ModelSpec]:
    return importlib.import_module(f"{__name__}.{module}").SPECS


@hookimpl
def register_models() -> list[ModelSpec | Deferred]:
    return [*collect_specs(sys.modules[__name__], skip=set(MODELS)),
            *(Deferred(names, partial(_specs_of, module)) for module, names in MODELS.items())]
