"""Built-in split protocols, registered through the same entry-point group as a third party's.

Each module of :mod:`.splitting` with a ``SPECS`` list contributes its splitters.
"""

from __future__ import annotations

from recbench.api import SplitterSpec, hookimpl

from . import splitting
from ._collect import collect_specs


@hookimpl
def register_splitters() -> list[SplitterSpec]:
    return collect_specs(splitting)
