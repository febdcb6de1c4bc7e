"""The command line every train/test peer runner shares (run as a script in the peer's own venv,
so this sits beside it and is imported by file location, never through recbench)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(run: Callable[[str, Path, Path, dict[str, Any]], dict[str, Any]], description: str,
         models: str, params: str, argv: list[str] | None = None) -> int:
    """``--model --train --test --params --out``: run one model and write its result as JSON."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--model", required=True, help=models)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--params", default="{}", help=params)
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the result")
    args = ap.parse_args(argv)
    args.out.write_text(json.dumps(run(args.model, args.train, args.test, json.loads(args.params))))
    return 0
