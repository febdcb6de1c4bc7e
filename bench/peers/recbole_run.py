"""Run one RecBole model on split files and print its test NDCG@10 as one JSON line.

Executed by ``bench/side_by_side.py`` inside RecBole's own virtual environment (never imports
recbench). The train/valid/test TSV files (user, item, ...; original ids) are copied into RecBole's
atomic-file layout and read through ``benchmark_filename``, so RecBole evaluates exactly those
parts: full ranking, training items masked for validation, training + validation items at test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# RecBole 1.2.1 stores its Config object in checkpoints; torch >= 2.6 refuses to unpickle it by
# default when the best model is reloaded for the test evaluation.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

DATASET = "split"
PARTS = ("train", "valid", "test")


def write_atomic_files(files: dict[str, Path], root: Path) -> None:
    """``<root>/split/split.<part>.inter`` with RecBole's typed header, user and item as tokens."""
    folder = root / DATASET
    folder.mkdir(parents=True)
    for part in PARTS:
        with open(files[part]) as src, open(folder / f"{DATASET}.{part}.inter", "w") as dst:
            dst.write("user_id:token\titem_id:token\n")
            for line in src:
                user, item = line.rstrip("\n").split("\t")[:2]
                dst.write(f"{user}\t{item}\n")


def run(model: str, files: dict[str, Path], params: dict) -> dict:
    from recbole import __version__ as recbole_version
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    with tempfile.TemporaryDirectory(prefix="recbole-run-") as tmp:
        root = Path(tmp)
        write_atomic_files(files, root)
        config_dict = {
            "data_path": str(root), "dataset": DATASET,
            "benchmark_filename": list(PARTS),
            "load_col": {"inter": ["user_id", "item_id"]},
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["NDCG"], "topk": [10], "valid_metric": "NDCG@10",
            "device": "cpu", "use_gpu": False, "seed": 0, "reproducibility": True,
            "checkpoint_dir": str(root / "saved"), "show_progress": False,
            "save_dataset": False, "save_dataloaders": False, "log_wandb": False,
            "state": "INFO",  # per-epoch train and valid times land in the log
            **params,
        }
        config = Config(model=model, dataset=DATASET, config_dict=config_dict)
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
        start = time.perf_counter()
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        fit_s = time.perf_counter() - start
        result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        return {"framework": f"RecBole {recbole_version}", "model": model,
                "ndcg@10": float(result["ndcg@10"]), "fit_s": fit_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="RecBole model class name, e.g. BPR")
    for part in PARTS:
        ap.add_argument(f"--{part}", type=Path, required=True)
    ap.add_argument("--params", default="{}", help="JSON object of RecBole config overrides")
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the result")
    args = ap.parse_args(argv)
    files = {part: getattr(args, part).resolve() for part in PARTS}
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value overrides from sys.argv
    args.out.write_text(json.dumps(run(args.model, files, json.loads(args.params))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
