"""Light settings of built-in models: what the default tour (`recbench run`) and the default
comparison (`recbench compare`) train instead of each model's own settings, so that both finish in
about a minute or two on 2 CPU cores, cold (compilation included).

One table for both commands, so a model is never light in two different ways. A light model's
label says ``(light: ...)`` and its config is recorded with every trial like any other; the
full-settings numbers are the experiments under ``results/``. Fewer epochs are validated once, at
the end; smaller networks keep full-ranking scoring and compilation cheap. Measured on
online-retail: see the README's "recbench compare" section and ``recbench.cli.run_cmd``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .config import Component

# One training row per user (its last 20 items), not one per window of its whole history.
_SEQUENTIAL = {"epochs": 3, "eval_every": 3, "max_len": 20, "dim": 32, "batch_size": 256,
               "windows": "last"}
_SEQUENTIAL_WHAT = "3 epochs, 20 items, d 32"

# model name -> (config overrides, what the label says about them)
LIGHT: Mapping[str, tuple[Mapping[str, Any], str]] = MappingProxyType({
    "ials": ({"epochs": 8}, "8 epochs"),
    "bpr": ({"learning_rate": 0.002, "epochs": 50, "eval_every": 5}, "50 epochs"),
    # Full-ranking scoring runs every user-item pair through the MLP: a 16x smaller network.
    "neumf": ({"epochs": 1, "eval_every": 1, "negatives": 1, "gmf_factors": 16,
               "mlp_factors": 16, "layers": (32, 16)}, "1 epoch, 16 factors"),
    "fm": ({"epochs": 3, "eval_every": 3}, "3 epochs"),
    "deepfm": ({"epochs": 3, "eval_every": 3}, "3 epochs"),
    "lightfm": ({"epochs": 3}, "3 epochs"),
    "biased-mf": ({"epochs": 10, "eval_every": 10}, "10 epochs"),
    "svdpp": ({"epochs": 5, "eval_every": 5}, "5 epochs"),
    "caser": (_SEQUENTIAL, _SEQUENTIAL_WHAT),
    "gru4rec": (_SEQUENTIAL, _SEQUENTIAL_WHAT),
    "lstm": (_SEQUENTIAL, _SEQUENTIAL_WHAT),
    "sasrec": ({**_SEQUENTIAL, "blocks": 1}, _SEQUENTIAL_WHAT + ", 1 block"),
})


def light(name: str) -> Component:
    """``name`` under its light settings, labelled so; a model without any: its own settings."""
    if name not in LIGHT:
        return Component(name)
    config, what = LIGHT[name]
    return Component(name, dict(config), label=f"{name} (light: {what})")
