"""Built-in split protocols, registered through the same entry-point group as a third party's.

Each module of :mod:`.splitting` with a ``SPECS`` list contributes its splitters; the ``given``
splitter still lives in the core (``recbench.splitfiles``) until it moves here too.
"""

from __future__ import annotations

from recbench.api import SplitterSpec, hookimpl

from . import splitting
from ._collect import collect_specs


@hookimpl
def register_splitters() -> list[SplitterSpec]:
    from recbench import splitfiles  # noqa: PLC0415 - known exception, see tests/test_public_api.py

    return [*collect_specs(splitting), *splitfiles.SPLITTERS]
