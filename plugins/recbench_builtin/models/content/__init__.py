"""Content-based models and the shared item feature encoding (``features``)."""

from __future__ import annotations

import sys

from ..._collect import collect_specs

SPECS = collect_specs(sys.modules[__name__])
