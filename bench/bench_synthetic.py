"""Synthetic generator at real-dataset scale: wall time and peak memory.

Generates the built-in ``synthetic`` dataset at ML-1M size (6,040 users x 3,706 items, ~1M
interactions) and ML-20M size (138,493 users x 26,744 items, ~20M interactions), each in a fresh
process so that the peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read in that process:
its high-water mark, interpreter and numpy included) belongs to that size alone. User activity is
log-normal with sigma 1 (``activity_spread=1.0``), a heavier tail closer to MovieLens than the
default; every signal can be switched on with ``--all-signals`` (content, sequential 0.3, 10%
cold items), which costs the Markov pass and the cold-item reordering on top. ``--popularity``
sets the Zipf exponent (default 1): above 1 the popularity proposals mostly repeat head items and
most users go through the dense Gumbel top-k sampler, O(n_items) per user.

``--sizes small`` (600 users x 300 items, ~18k interactions) is a seconds-long check that the
script runs. The time covers ``generate(cfg)`` only: planted structure, sampling, Markov rewrite,
timestamps, ratings, and building the frozen :class:`recbench.Dataset` (which copies and hashes
the columns).

    python bench/bench_synthetic.py [--sizes ml-1m ml-20m | small] [--all-signals] \
                                    [--popularity 1.0]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

SIZES = {
    "small": {"n_users": 600, "n_items": 300, "mean_per_user": 30},
    "ml-1m": {"n_users": 6040, "n_items": 3706, "mean_per_user": 166},
    "ml-20m": {"n_users": 138_493, "n_items": 26_744, "mean_per_user": 145},
}


def child(size: str, all_signals: bool, popularity: float) -> None:
    """Run in a fresh process: generate once, print one JSON line."""
    import numpy as np
    from recbench_builtin.datasets.synthetic import SyntheticConfig, generate

    extra = {"content": 1.0, "sequential": 0.3, "cold_item_fraction": 0.1} if all_signals else {}
    cfg = SyntheticConfig(**SIZES[size], activity_spread=1.0, popularity=popularity, **extra)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t = time.perf_counter()
    ds = generate(cfg)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    x = ds.interactions
    print(json.dumps({
        "size": size, "signals": ds.metadata["signals_on"], "popularity": popularity,
        "users": x.n_users, "items": x.n_items, "interactions": len(x),
        "max_per_user": int(x.user_counts.max()),
        "seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(base, 1),
        "top1pct_item_share": round(float(np.sort(x.item_counts)[::-1][:max(1, x.n_items // 100)]
                                          .sum() / len(x)), 3)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["ml-1m", "ml-20m"], choices=list(SIZES))
    ap.add_argument("--all-signals", action="store_true")
    ap.add_argument("--popularity", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", choices=list(SIZES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.all_signals, args.popularity)
        return
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{'size':<8} {'pop':>4} {'signals':<58} {'users':>8} {'items':>7} "
          f"{'interactions':>13} {'max/user':>8} {'top1%':>6} {'seconds':>8} {'peak RSS MB':>12}")
    for size in args.sizes:
        for _ in range(args.repeat):
            cmd = [sys.executable, __file__, "--child", size, "--popularity", str(args.popularity)]
            if args.all_signals:
                cmd.append("--all-signals")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['size']:<8} {r['popularity']:>4g} {','.join(r['signals']):<58} "
                  f"{r['users']:>8} {r['items']:>7} {r['interactions']:>13,} "
                  f"{r['max_per_user']:>8} {r['top1pct_item_share']:>6.3f} {r['seconds']:>8.2f} "
                  f"{r['peak_rss_mb']:>12.0f}")


if __name__ == "__main__":
    main()
