"""Built-in split protocols, registered through the same entry-point group as a third party's."""

from __future__ import annotations

from recbench import SplitterSpec, hookimpl
from recbench import splitfiles, split


@hookimpl
def register_splitters() -> list[SplitterSpec]:
    return [*split.SPLITTERS, *splitfiles.SPLITTERS]
