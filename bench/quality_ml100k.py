"""Quality of the gradient-trained built-ins on ML-100K against published numbers.

Two protocols, each as the published figure was made:

- ranking (RecBole's quick start): random per-user 8:1:1 split (the ``ratio`` splitter implements
  RecBole's part-size rule), full ranking, training and validation items masked at test time,
  K=10, 64 factors, early stopping on validation NDCG@10. Reference BPR-MF: NDCG@10 0.2768,
  Recall@10 0.2368, Hit@10 0.7614, Precision@10 0.1901, MRR@10 0.4519 (RecBole README);
- rating (Surprise's benchmark): 5-fold random k-fold over all ratings (``kfold``,
  by="interactions"), RMSE. Reference: SVD 0.934, SVD++ 0.919.

For ranking, splits and model keys are derived exactly as ``recbench run`` derives them (seed,
dataset name and checksum), so a TOML experiment with the same settings gives the same numbers. The
rating part is not a plain ``recbench run``: it fits a probe on an inner validation share of each
fold to choose the epoch count, then refits. Hyperparameters are
chosen on validation data only: the ranking split's validation part; for rating prediction a 10%
random share of each fold's *training* ratings (early stopping picks the epoch count, then the model
is refitted on the whole training fold for that many epochs). Test data is never looked at to choose
anything.

    python bench/quality_ml100k.py [--part bpr|neumf|rating|all] [--seeds 5]
        [--bpr '{"learning_rate": 0.005}'] [--mf '{"reg": 0.05}'] [--tune]

``--tune`` prints a small grid's validation scores (seed 0) instead of test results.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from typing import Any

import numpy as np
from _ml100k import load, published_folds

from recbench import Dataset, Interactions
from recbench.config import from_mapping
from recbench.evaluate import evaluate_points, evaluate_ranking
from recbench.plugins import load_plugins
from recbench.random import derive_key, derive_rng
from recbench.registry import Registry
from recbench.specs import ModelContext
from recbench.split import KFoldConfig, RatioConfig, kfold, ratio

RECBOLE_BPR = {"ndcg@10": 0.2768, "recall@10": 0.2368, "hit@10": 0.7614, "precision@10": 0.1901,
               "mrr@10": 0.4519}
RECBOLE_NEUMF_MEASURED = {"ndcg@10": 0.2778}  # BENCHMARKS.md, RecBole 1.2.1 on our machine
SURPRISE_RMSE = {"biased-mf": 0.934, "svdpp": 0.919}
REGISTRY = Registry.build(load_plugins(allow=set()))


def fit(name: str, overrides: dict[str, Any], train: Interactions, valid: Interactions | None,
        key: Any, task: str) -> Any:
    spec = REGISTRY.spec("model", name)
    cfg = from_mapping(spec.config, overrides, where=f"{name} config")
    ctx = ModelContext(train.n_users, train.n_items, task=task)
    return spec.factory(cfg, ctx).fit(train, valid=valid, key=key)


def mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


# ---------------------------------------------------------------- ranking (BPR, NeuMF)


def ranking_run(ds: Dataset, name: str, overrides: dict[str, Any], seeds: list[int],
                tune: bool = False) -> dict[str, list[float]]:
    metric_names = ("ndcg", "recall", "hit", "precision", "mrr")
    metrics = [REGISTRY.spec("metric", m) for m in metric_names]
    out: dict[str, list[float]] = {}
    for seed in seeds:
        split = ratio(ds.interactions, RatioConfig((0.8, 0.1, 0.1)),
                      derive_rng(seed, "split", ds.name, ds.checksum))
        key = derive_key(seed, "model", name, ds.name)
        t0 = time.perf_counter()
        fitted = fit(name, overrides, split.train, split.valid, key, "ranking")
        fit_s = time.perf_counter() - t0
        if tune:
            target, known = split.valid, split.train
        else:
            target, known = split.test, Interactions.concat(split.train, split.valid)
        res = evaluate_ranking(fitted, train=split.train, test=target, known=known,
                               metrics=metrics, ks=(10,))
        tm = fitted.timings
        print(f"  seed {seed}: " + " ".join(f"{k}={v:.4f}" for k, v in res.metrics.items())
              + f" | fit {fit_s:.1f} s (compile {tm['fit_compile_s']:.2f}, epochs "
                f"{tm['epochs_run']}, best {tm['best_epoch']}, epoch {tm['epoch_s'] * 1e3:.0f} ms, "
                f"valid {tm['valid_s']:.1f} s) eval {res.timings['eval_total_s']:.2f} s", flush=True)
        for k, v in res.metrics.items():
            out.setdefault(k, []).append(v)
        out.setdefault("fit_s", []).append(fit_s)
    return out


# ---------------------------------------------------------------- rating (biased MF, SVD++)


def random_folds(ds: Dataset, seed: int = 0):
    """Surprise's protocol: one random 5-fold partition of all ratings."""
    for fold in range(5):
        split = kfold(ds.interactions, KFoldConfig(k=5, fold=fold, by="interactions"),
                      derive_rng(seed, "split", ds.name, ds.checksum))
        yield fold, split.train, split.test


def rating_run(ds: Dataset, name: str, overrides: dict[str, Any], seed: int = 0,
               tune: bool = False, folds: Any = None) -> list[float]:
    rmse = [REGISTRY.spec("metric", "rmse")]
    scores = []
    for fold, train, test in (folds if folds is not None else random_folds(ds, seed)):
        pick = derive_rng(seed, "inner-valid", name, fold).random(len(train)) < 0.1
        inner_train, inner_valid = train.subset(~pick), train.subset(pick)
        key = derive_key(seed, "model", name, ds.name, fold)
        t0 = time.perf_counter()
        probe = fit(name, overrides, inner_train, inner_valid, key, "rating")
        if tune:
            res = evaluate_points(probe, users=inner_valid.user, items=inner_valid.item,
                                  target=inner_valid.rating, metrics=rmse)
            print(f"  fold {fold}: valid rmse={res.metrics['rmse']:.4f} best epoch "
                  f"{probe.timings['best_epoch']}", flush=True)
            scores.append(res.metrics["rmse"])
            if fold == 1:
                break
            continue
        epochs = int(probe.timings["best_epoch"])
        fitted = fit(name, {**overrides, "epochs": epochs}, train, None, key, "rating")
        fit_s = time.perf_counter() - t0
        res = evaluate_points(fitted, users=test.user, items=test.item, target=test.rating,
                              metrics=rmse)
        print(f"  fold {fold}: rmse={res.metrics['rmse']:.4f} (epochs {epochs} from the inner "
              f"validation; fit {fit_s:.1f} s incl. the probe, compile "
              f"{fitted.timings['fit_compile_s']:.2f} s, epoch "
              f"{fitted.timings['epoch_s'] * 1e3:.0f} ms)", flush=True)
        scores.append(res.metrics["rmse"])
    return scores


def grid(base: dict[str, Any], **axes: list[Any]) -> list[dict[str, Any]]:
    configs = [dict(base)]
    for k, values in axes.items():
        configs = [{**c, k: v} for c in configs for v in values]
    return configs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["bpr", "neumf", "rating", "all"], default="all")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bpr", type=json.loads, default={})
    ap.add_argument("--neumf", type=json.loads, default={})
    ap.add_argument("--mf", type=json.loads, default={})
    ap.add_argument("--svdpp", type=json.loads, default=None)
    ap.add_argument("--tune", action="store_true")
    args = ap.parse_args()
    ds = load(REGISTRY)
    x = ds.interactions
    print(f"ML-100K: {x.n_users} users x {x.n_items} items, {len(x):,} ratings "
          f"(checksum {ds.checksum[:24]})")
    seeds = list(range(args.seeds))

    for name, ref, overrides in (("bpr", RECBOLE_BPR, args.bpr),
                                 ("neumf", RECBOLE_NEUMF_MEASURED, args.neumf)):
        if args.part not in (name, "all"):
            continue
        if args.tune:
            for cfg in grid({"factors": 64, **overrides}, learning_rate=[0.002, 0.005, 0.01],
                            reg=[0.0, 1e-4, 1e-3]):
                print(f"{name} {cfg} (validation, seed 0)")
                ranking_run(ds, name, cfg, [0], tune=True)
            continue
        cfg = {"factors": 64, **overrides} if name == "bpr" else dict(overrides)
        print(f"\n{name} {cfg}, random 8:1:1 per user, K=10, seeds {seeds}")
        res = ranking_run(ds, name, cfg, seeds)
        print(f"{name} over {len(seeds)} seeds (mean ± std) vs reference:")
        for k in ("ndcg@10", "recall@10", "hit@10", "precision@10", "mrr@10"):
            print(f"  {k:13s} {mean_std(res[k])}   reference "
                  f"{f'{ref[k]:.4f}' if k in ref else '-'}")
        print(f"  fit time      {mean_std(res['fit_s'])} s")

    if args.part in ("rating", "all"):
        models = [("biased-mf", args.mf)] + ([("svdpp", args.svdpp)] if args.svdpp is not None
                                            else [])
        for name, overrides in models:
            if args.tune:
                for cfg in grid(overrides, learning_rate=[0.002, 0.005], reg=[0.02, 0.05, 0.1]):
                    print(f"{name} {cfg} (inner validation, folds 0-1)")
                    print(f"  mean valid rmse {np.mean(rating_run(ds, name, cfg, tune=True)):.4f}")
                continue
            print(f"\n{name} {overrides}, 5-fold random k-fold (by interactions), RMSE")
            scores = rating_run(ds, name, overrides)
            print(f"{name} RMSE over 5 folds: {mean_std(scores)}   Surprise "
                  f"{SURPRISE_RMSE[name]:.3f}")
            print(f"\n{name} {overrides}, published u1..u5 folds, RMSE")
            scores = rating_run(ds, name, overrides, folds=published_folds(ds))
            print(f"{name} RMSE over u1..u5: {mean_std(scores)}")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
