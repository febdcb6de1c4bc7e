"""Hybrid models: collaborative signal joined to item (and user) content."""

from __future__ import annotations

import sys

from ..._collect import collect_specs

SPECS = collect_specs(sys.modules[__name__])
