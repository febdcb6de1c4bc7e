"""docs/train-models.md: its plugin module, test and command work exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from recbench.cli.models_cmd import models_command
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.testing import tiny_dataset
from recbench_builtin.splitting.protocols import RatioConfig, ratio

DOC = Path(__file__).resolve().parents[1] / "docs" / "train-models.md"


def block(lang: str, containing: str) -> str:
    blocks = re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"docs/train-models.md: expected one {lang} block with {containing!r}"
    return found[0]


def test_module_trains_stops_early_and_keeps_the_contract(tmp_path, monkeypatch):
    module = tmp_path / "my_bpr.py"
    module.write_text(block("python", "def register_models"))
    host = load_plugins(allow=set(), paths=(module,))
    assert host.info("my_bpr").error is None
    registry = Registry.build(host)
    spec = registry.model("my-bpr")

    # Early stopping on the validation part: fit_info reports where it stopped.
    x = tiny_dataset().interactions
    split = ratio(x, RatioConfig((0.6, 0.2, 0.2)), np.random.default_rng(0))
    model = spec.factory(spec.config(epochs=12, patience=2), None)
    import jax

    fitted = model.fit(split.train, valid=split.valid, key=jax.random.key(0))
    info = fitted.fit_info
    assert {"epochs_run", "best_epoch", "epoch_s", "valid_s"} <= set(info)
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 12
    assert fitted.score is not None and np.isfinite(np.asarray(fitted.user_emb)).all()

    # The page's contract test, run as printed from the folder holding my_bpr.py.
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block("python", "def test_my_bpr_keeps_the_contract"), namespace)
    namespace["test_my_bpr_keeps_the_contract"]()

    # `recbench --plugin my_bpr.py models my-bpr`
    command = block("text", "models my-bpr").strip()
    assert command == "$ recbench --plugin my_bpr.py models my-bpr"
    out = CliRunner().invoke(models_command, ["my-bpr"],
                             obj={"plugin_paths": ("my_bpr.py",)}, catch_exceptions=False).output
    assert "factors: int = 16" in out and "embedding size" in out and "valid: >= 1" in out
