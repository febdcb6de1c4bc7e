#!/usr/bin/env python
"""Build the embedded ``online-retail`` dataset from the raw UCI Online Retail file.

    python scripts/build_online_retail.py [RAW] [--out PATH] [--core 5] [--check]

RAW defaults to ``../shared/datasets/uci-online-retail/online_retail.csv.gz`` (relative to the
repository root); the UCI ``online+retail.zip`` or its ``Online Retail.xlsx`` work too (openpyxl
needed for the .xlsx). The cleaning, aggregation, k-core and attribute code is not here: it lives in
``recbench_builtin.datasets.online_retail`` (``read_raw``, ``derive``, ``write_npz``), the same code
the ``online-retail-full`` loader runs, so the shipped file and the full loader cannot drift apart.

Writes ``plugins/recbench_builtin/datasets/data/online_retail.npz`` (deterministic: fixed zip entry
times, sorted members, zlib level 9), then prints the sha256 of input and output and the numbers
that go into ``datasets/online-retail.md`` and ``EMBEDDED_SHA256`` in the module. ``--check``
rebuilds into memory and fails unless the arrays equal the shipped file's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RAW = ROOT.parent / "shared" / "datasets" / "uci-online-retail" / "online_retail.csv.gz"
DEFAULT_OUT = ROOT / "plugins" / "recbench_builtin" / "datasets" / "data" / "online_retail.npz"


def _module():
    try:
        from recbench_builtin.datasets import online_retail
    except ImportError:  # not installed: use the source tree
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        from recbench_builtin.datasets import online_retail
    return online_retail


def summary(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    user, item, ts = arrays["user"], arrays["item"], arrays["timestamp"]
    day = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(t)))  # noqa: E731
    pairs = np.unique(user.astype(np.int64) * len(arrays["item_ids"]) + item)
    return {
        "customers": len(arrays["user_ids"]),
        "products": len(arrays["item_ids"]),
        "interactions": len(user),
        "distinct_pairs": len(pairs),
        "baskets": len(np.unique(arrays["basket"])),
        "countries": len(np.unique(arrays["user_country"])),
        "time_span": [day(ts.min()), day(ts.max())],
        "min_rows_per_customer": int(np.bincount(user).min()),
        "min_rows_per_product": int(np.bincount(item).min()),
        "density": len(pairs) / (len(arrays["user_ids"]) * len(arrays["item_ids"])),
        "cleaning": json.loads(str(arrays["cleaning"])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", nargs="?", type=Path, default=DEFAULT_RAW,
                    help=f"raw Online Retail file (default {DEFAULT_RAW})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .npz (default {DEFAULT_OUT})")
    ap.add_argument("--core", type=int, default=5, help="k-core on distinct customer-product pairs")
    ap.add_argument("--check", action="store_true",
                    help="rebuild and compare with the existing --out file; write nothing")
    args = ap.parse_args(argv)
    m = _module()

    start = time.perf_counter()
    arrays = m.derive(m.read_raw(args.raw), args.core)
    elapsed = time.perf_counter() - start
    input_sha = m.file_sha256(args.raw)

    if args.check:
        shipped = m.read_npz(args.out.read_bytes())
        same = shipped.keys() == arrays.keys() and all(
            shipped[k].dtype == arrays[k].dtype and np.array_equal(shipped[k], arrays[k])
            for k in arrays)
        print(f"{args.out}: {'matches' if same else 'DIFFERS FROM'} a rebuild from {args.raw}")
        return 0 if same else 1

    m.write_npz(arrays, args.out)  # atomic: a reader never sees half a file
    output_sha = m.file_sha256(args.out)

    report = {"input": str(args.raw), "input_sha256": input_sha, "output": str(args.out),
              "output_sha256": output_sha, "output_bytes": args.out.stat().st_size,
              "build_seconds": round(elapsed, 2), **summary(arrays)}
    print(json.dumps(report, indent=2))
    if input_sha != m.EMBEDDED_INPUT_SHA256 or output_sha != m.EMBEDDED_SHA256:
        print("\nThe module's recorded checksums differ: set EMBEDDED_INPUT_SHA256 and "
              "EMBEDDED_SHA256 in plugins/recbench_builtin/datasets/online_retail.py and update "
              "datasets/online-retail.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
