"""content-knn speed at ML-1M size against a numpy/scipy floor, and a lightfm epoch, one run.

Data (synthetic, ML-1M-shaped): 6,040 users x 3,706 items, ~1M training interactions
(popularity-skewed, log-normal activity), 20 genre columns (1-3 genres per item) and item
descriptions drawn from a 5,000-word vocabulary (TF-IDF keeps the 1,000 most frequent terms).

- recbench: ``content-knn`` ``fit`` (feature encoding, profile building, upload) and
  ``evaluate_ranking`` (full ranking, training items masked, top-10, NDCG and recall), after a
  first call that compiles; median and minimum of ``--repeats``;
- floor (numpy/scipy, same encoded item matrix): the profile product ``W @ F`` (scipy sparse),
  row normalisation, then per block of 256 users ``P @ F.T``, seen items set to -inf and
  ``np.argpartition`` top-10; the encoding itself is not in the floor (it is shared work);
- lightfm: one epoch over the ~0.8M training interactions (WARP-style, 16 negatives), and
  fm / deepfm (BPR, the genre + text attribute field; for deepfm also its full-ranking
  evaluation, an MLP pass per (user, item) pair), and two-tower (the genre attributes and
  the descriptions through the text CNN, in-batch softmax), each after compilation (``epoch_s``
  of a 3-epoch fit without validation: the median epoch after the first); for two-tower also
  the multiply-adds of a step by part and the epoch time they take at numpy's BLAS speed;
- with ``--two-tower-parts``: two-tower's epoch with every other row's item as a negative (the
  default shares 512), and with parts of its step switched off (no text CNN, a history of 1
  item, both), 2-epoch fits, to show where the epoch goes;
- fm / deepfm again in the goal's own setting: ~1M training interactions (1.25x the mean
  activity) and 3 numeric attribute fields (price, discount, sales, as in the e-commerce case),
  no text.

Goals (issue 9): content-knn profile building + full-ranking evaluation <= 1 s after
compilation; an FM/DeepFM epoch over 1M interactions <= 2 s, a two-tower epoch <= 5 s.

    python bench/bench_content.py [--repeats 3] [--two-tower-parts]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

from recbench import Interactions
from recbench.api import FeatureTable, ModelContext
from recbench.evaluate import evaluate_ranking
from recbench_builtin.metrics import METRICS, NDCG
from recbench_builtin.models.content.features import FeatureOptions, encode_items
from recbench_builtin.models.content.knn import ContentKNN, ContentKNNConfig


RECALL = next(m for m in METRICS if m.name == "recall")


def make_data(n_users: int, n_items: int, mean_train: float, seed: int):
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(0.0, 1.0, n_users)
    n_train = np.clip(np.round(raw * mean_train / raw.mean()), 20, n_items // 2).astype(int)
    n_test = np.maximum(1, n_train // 8)
    logp = -np.log(rng.permutation(n_items) + 10.0)
    rows = {"tu": [], "ti": [], "eu": [], "ei": []}
    for start in range(0, n_users, 512):
        block = np.arange(start, min(start + 512, n_users))
        order = np.argsort(-(logp[None, :] + rng.gumbel(size=(len(block), n_items))), axis=1)
        for r, u in enumerate(block):
            a, b = n_train[u], n_train[u] + n_test[u]
            rows["tu"].append(np.full(a, u))
            rows["ti"].append(order[r, :a])
            rows["eu"].append(np.full(b - a, u))
            rows["ei"].append(order[r, a:b])
    cat = {k: np.concatenate(v) for k, v in rows.items()}
    train = Interactions(cat["tu"], cat["ti"], n_users, n_items,
                         timestamp=np.arange(len(cat["tu"])))
    test = Interactions(cat["eu"], cat["ei"], n_users, n_items)
    genres = np.zeros((n_items, 20), np.float32)
    for i in range(n_items):
        genres[i, rng.choice(20, rng.integers(1, 4), replace=False)] = 1.0
    vocabulary = np.array([f"w{j}" for j in range(5000)])
    zipf = 1.0 / np.arange(1, 5001)
    text = np.array([" ".join(rng.choice(vocabulary, rng.integers(3, 15), p=zipf / zipf.sum()))
                     for _ in range(n_items)], dtype=object)
    ctx = ModelContext(n_users, n_items, FeatureTable(genres, tuple(f"g{j}" for j in range(20))),
                       item_text=text)
    return train, test, ctx


def retail_fields(n_items: int, seed: int) -> FeatureTable:
    """The e-commerce case's three numeric item attributes: a log-normal price, a uniform
    discount and Poisson sales."""
    rng = np.random.default_rng(seed)
    values = np.stack([rng.lognormal(1.0, 1.0, n_items), rng.uniform(0.0, 0.5, n_items),
                       rng.poisson(50.0, n_items)], axis=1).astype(np.float32)
    return FeatureTable(values, ("price", "discount", "sales"))


def floor(train: Interactions, features, k: int, block: int = 256) -> None:
    w = train.csr.multiply(1.0 / np.maximum(train.user_counts, 1)[:, None]).tocsr()
    profiles = np.asarray((w @ features).todense(), np.float32)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    seen = train.csr
    for start in range(0, train.n_users, block):
        # sparse items x features times dense features x users: scipy's fast path
        scores = np.ascontiguousarray((features @ profiles[start:start + block].T).T)
        rows = seen[start:start + block]
        scores[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        np.argpartition(-scores, k, axis=1)[:, :k]


def timed(fn, repeats: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--mean-train", type=float, default=132.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hybrids", nargs="*", default=["lightfm", "fm", "deepfm", "two-tower"],
                        help="hybrid models whose epoch to time (none: only content-knn)")
    parser.add_argument("--skip-knn", action="store_true")
    parser.add_argument("--two-tower-parts", action="store_true",
                        help="also time two-tower epochs with parts of the step switched off")
    args = parser.parse_args()
    train, test, ctx = make_data(args.users, args.items, args.mean_train, 0)
    print(f"load {os.getloadavg()[0]:.2f}; jax {jax.__version__}; {args.users} users x "
          f"{args.items} items, {len(train)} train / {len(test)} test interactions")
    model = ContentKNN(ContentKNNConfig(), ctx)
    encoded = encode_items(ctx, FeatureOptions(), "bench")
    print(f"features: {len(encoded.columns)} columns ({encoded.matrix.nnz} nonzeros)")

    def recbench_run() -> None:
        fitted = model.fit(train, key=jax.random.key(0))
        evaluate_ranking(fitted, train=train, test=test, metrics=[NDCG, RECALL], ks=(10,))

    def fit_only() -> None:
        jax.block_until_ready(model.fit(train, key=jax.random.key(0)).profiles)

    if not args.skip_knn:
        first, med, best = timed(recbench_run, args.repeats)
        print(f"content-knn fit + evaluation: first {first:.3f} s, median {med:.3f} s, "
              f"min {best:.3f} s")
        _, fit_med, _ = timed(fit_only, args.repeats)
        print(f"  of which fit (encoding + profiles + upload): median {fit_med:.3f} s")
        first, med, best = timed(lambda: floor(train, encoded.matrix, 10), args.repeats)
        print(f"numpy/scipy floor (profiles + blocked scores + mask + top-10): median "
              f"{med:.3f} s, min {best:.3f} s")
        print(f"load {os.getloadavg()[0]:.2f}")
    if args.hybrids:
        from recbench_builtin.models.hybrid.fm import FM, DeepFMConfig, FMConfig
        from recbench_builtin.models.hybrid.lightfm import LightFM, LightFMConfig
        from recbench_builtin.models.hybrid.two_tower import TwoTower, TwoTowerConfig
        makers = {"lightfm": lambda: LightFM(LightFMConfig(epochs=3), ctx),
                  "two-tower": lambda: TwoTower(TwoTowerConfig(epochs=3), ctx),
                  "fm": lambda: FM(FMConfig(epochs=3), ctx, "fm"),
                  "deepfm": lambda: FM(DeepFMConfig(epochs=3), ctx, "deepfm")}
        for name, make in ((n, makers[n]) for n in args.hybrids):
            t0 = time.perf_counter()
            fitted = make().fit(train, key=jax.random.key(0))
            total = time.perf_counter() - t0
            print(f"{name}: 3 epochs over {len(train)} interactions, fit {total:.2f} s (with "
                  f"compilation), epoch_s {fitted.fit_info['epoch_s']:.3f} s; "
                  f"load {os.getloadavg()[0]:.2f}")
            if name == "deepfm":  # its full ranking runs the MLP for every (user, item) pair
                _, med, best = timed(lambda: evaluate_ranking(
                    fitted, train=train, test=test, metrics=[NDCG], ks=(10,)), args.repeats)
                print(f"  deepfm full-ranking evaluation, {ctx.n_users} users x {ctx.n_items} "
                      f"items: median {med:.3f} s, min {best:.3f} s")
            if name == "two-tower":
                two_tower_floor(fitted.fit_info, TwoTowerConfig(), len(train), ctx.n_items)
                if args.two_tower_parts:
                    two_tower_parts(train, ctx)
        fms = [n for n in args.hybrids if n in ("fm", "deepfm")]
        if fms:  # the goal's own setting: 1M interactions, 3 attribute fields
            train3, _, ctx3 = make_data(args.users, args.items, args.mean_train * 1.25, 0)
            ctx3 = ModelContext(ctx3.n_users, ctx3.n_items, retail_fields(ctx3.n_items, 1))
            for name in fms:
                cfg = (FMConfig if name == "fm" else DeepFMConfig)(epochs=3)
                fitted = FM(cfg, ctx3, name).fit(train3, key=jax.random.key(0))
                print(f"{name}, 3 attribute fields (price, discount, sales): epoch_s "
                      f"{fitted.fit_info['epoch_s']:.3f} s over {len(train3)} interactions; "
                      f"load {os.getloadavg()[0]:.2f}")


TWO_TOWER_PARTS = {
    "every other row's item a negative (negatives 0)": {"negatives": 0},
    "no text CNN": {"vocab_size": 0},
    "history of 1 item": {"history_length": 1},
    "neither": {"vocab_size": 0, "history_length": 1},
}


def two_tower_parts(train, ctx) -> None:
    """The epoch (``epoch_s`` of a 2-epoch fit: its second epoch) with parts switched off."""
    from recbench_builtin.models.hybrid.two_tower import TwoTower, TwoTowerConfig
    for label, change in TWO_TOWER_PARTS.items():
        fitted = TwoTower(TwoTowerConfig(epochs=2, **change), ctx).fit(train,
                                                                      key=jax.random.key(0))
        print(f"  two-tower, {label}: epoch_s {fitted.fit_info['epoch_s']:.3f} s; "
              f"load {os.getloadavg()[0]:.2f}")


def two_tower_floor(info: dict, cfg, n_rows: int, n_items: int) -> None:
    """Where a two-tower epoch goes: the multiply-adds of one step (forward; the backward pass is
    about twice that), and the epoch time they would take at the speed numpy's BLAS multiplies a
    [batch x items] by [items x factors] matrix in this run (the floor)."""
    b, k = cfg.batch_size, cfg.factors
    negatives = cfg.shared_negatives
    # The text CNN multiplies the word table (PAD, OOV and the words; its rows are rounded up
    # further) by each kernel tap, then sums gathered rows (not counted).
    parts = {"item tower CNN": (info["vocabulary"] + 2) * cfg.embed_dim * cfg.kernel * cfg.filters,
             "item tower projection": n_items * (info["item_attributes"] + cfg.filters) * k,
             "history mean (gather)": b * cfg.history_length * k,
             "in-batch logits": b * negatives * k, "user projection": b * k * k}
    steps = -(-n_rows // b)
    total = 3 * sum(parts.values()) * steps  # forward + backward
    rng = np.random.default_rng(0)
    x, y = rng.random((b, n_items), np.float32), rng.random((n_items, k), np.float32)
    _, _, best = timed(lambda: x @ y, 5)
    rate = b * n_items * k / best
    print("  two-tower multiply-adds per step (forward): " + ", ".join(
        f"{n} {v / 1e6:.0f}M" for n, v in parts.items()))
    print(f"  {steps} steps, {total / 1e9:.1f} G multiply-adds an epoch (forward and backward: "
          f"3x the forward); numpy BLAS here {rate / 1e9:.1f} G/s: floor {total / rate:.2f} s an epoch, "
          f"measured {info['epoch_s']:.2f} s")


if __name__ == "__main__":
    main()
