"""The suite compiles XLA programs with its own flags (tests/conftest.py: optimisation level 0,
XLA:CPU's classic fusion emitters); users run the defaults. Both compute the same numbers up to
float32 rounding, not bit for bit (LLVM's optimisations reorder or fuse some floating-point
operations: BPR's scores differ by ~1e-7 of their scale), so a test passing under the suite's flags
holds under the defaults within any tolerance looser than that: checked here on a gradient model
(BPR) and a closed-form one (item-kNN), each fitted in a fresh process per set of flags."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np
from recbench.config import from_mapping
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.random import derive_key
from recbench.specs import ModelContext
from recbench.testing.contract import _batch, tiny_dataset
reg = Registry.build(load_plugins(allow=set()))
x = tiny_dataset().interactions
ctx = ModelContext(x.n_users, x.n_items)
scores = {}
for name, config in (("bpr", {"epochs": 3}), ("item-knn", {})):
    spec = reg.model(name)
    fitted = spec.factory(from_mapping(spec.config, config), ctx).fit(x, key=derive_key(0))
    scores[name] = np.asarray(fitted.score(_batch(x, np.arange(8))))
np.savez(sys.argv[1], **scores)
"""


def _scores(flags: str, out) -> dict[str, np.ndarray]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)],
                          env={**os.environ, "XLA_FLAGS": flags}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return dict(np.load(out))


def test_the_suites_xla_flags_compute_what_the_defaults_compute(tmp_path):
    default = _scores("", tmp_path / "default.npz")
    level0 = _scores(os.environ["XLA_FLAGS"], tmp_path / "suite.npz")  # as conftest set them
    for name, want in default.items():
        scale = np.abs(want).max()
        assert scale > 0, name
        np.testing.assert_allclose(level0[name], want, rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=name)
