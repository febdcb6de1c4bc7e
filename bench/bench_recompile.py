"""Backend compilations of a first fit and of refits on other splits of the same size class.

For every built-in model (and every task it serves) on 600 x 300 synthetic data: fit on ratio
split seed 0 (80/10/10, with validation), then refit on seeds 1 and 2; and fit on fold 0 of a
5-fold split, then refit on folds 1 and 2 (no validation). Compilations are counted with
``recbench.timing.CompileClock`` (JAX's backend-compile event, which also fires on a persistent-
cache hit, so the count does not depend on the cache). Target: 0 on every refit.

    python bench/bench_recompile.py            # light settings (recbench.light): compiles do
                                               # not depend on epochs
    python bench/bench_recompile.py --full     # the models' default configs

The data carry the synthetic generator's item attributes, so content and hybrid models fit too.
"""

from __future__ import annotations

import argparse
import time

import jax

from recbench.config import from_mapping
from recbench.light import LIGHT
from recbench.plugins import load_plugins
from recbench.random import derive_key, derive_rng
from recbench.registry import Registry
from recbench.specs import ModelContext, item_text_of
from recbench.timing import CompileClock
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate
from recbench_builtin.splitting.protocols import KFoldConfig, RatioConfig, kfold, ratio


def fit_counted(model, split, key) -> tuple[int, float]:
    with CompileClock() as clock:
        t0 = time.perf_counter()
        fitted = model.fit(split.train, valid=split.valid, key=key)
        jax.block_until_ready([v for v in vars(fitted).values() if isinstance(v, jax.Array)]
                              if hasattr(fitted, "__dict__") else ())
        seconds = time.perf_counter() - t0
    return clock.compiles, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the models' default configs")
    parser.add_argument("--model", action="append", help="only these models (repeatable)")
    args = parser.parse_args()
    registry = Registry.build(load_plugins(allow=set()))
    ds = generate(SyntheticConfig(n_users=600, n_items=300, seed=0))
    x = ds.interactions
    protocols = {
        "ratio seeds 0,1,2": [ratio(x, RatioConfig((0.8, 0.1, 0.1)), derive_rng(s, "split"))
                              for s in range(3)],
        "5-fold folds 0,1,2": [kfold(x, KFoldConfig(k=5, fold=f), derive_rng(0, "split"))
                               for f in range(3)],
    }
    print(f"600 x 300 synthetic, {len(x)} interactions; jax {jax.__version__} on "
          f"{jax.default_backend()}")
    print(f"{'model':<12} {'task':<8} {'protocol':<20} {'first fit':>16} {'refits':>22}")
    for name in args.model or registry.names("model"):
        spec = registry.model(name)
        light = {} if args.full else dict(LIGHT.get(name, ({}, ""))[0])
        cfg = from_mapping(spec.config, light, where=f"model {name!r}")
        for task in sorted(spec.tasks):
            ctx = ModelContext(x.n_users, x.n_items, ds.item_features, ds.user_features,
                               task=task, item_text=item_text_of(ds))
            for label, splits in protocols.items():
                model = spec.factory(cfg, ctx)
                runs = [fit_counted(model, s, derive_key(i, "bench-recompile", name))
                        for i, s in enumerate(splits)]
                (c0, t0), rest = runs[0], runs[1:]
                refits = ", ".join(f"{c} ({t:.2f} s)" for c, t in rest)
                print(f"{name:<12} {task:<8} {label:<20} {c0:>5} ({t0:6.2f} s) {refits:>22}",
                      flush=True)


if __name__ == "__main__":
    main()
