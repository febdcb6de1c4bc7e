"""Run one RecBole model on split files and print its test NDCG@10 as one JSON line.

Executed by ``bench/side_by_side.py`` inside RecBole's own virtual environment (never imports
recbench). The train/valid/test TSV files (user, item, ...; original ids) are copied into RecBole's
atomic-file layout and read through ``benchmark_filename``, so RecBole evaluates exactly those
parts: full ranking, training items masked for validation, training + validation items at test.

``--sequential`` (GRU4Rec, SASRec, ...): RecBole does not build histories from benchmark files (its
``SequentialDataset`` augments only a dataset it splits itself), so each row is written with its
``item_id_list``, by RecBole's own augmentation rule: every training item after a user's first is a
target with the up to ``MAX_ITEM_LIST_LENGTH`` training items before it; the validation item has
the user's training items as history, the test item the training + validation items. Sequences are
in time order, stably (equal timestamps keep file order, as recbench orders them). RecBole ranks
all items for a sequential model without masking seen ones; the result reports that ("ndcg@10",
"hit@10") and, from the same scores, the test ranked with every training + validation item of the
user masked as recbench ranks it ("masked_ndcg@10", "masked_hit@10"). ``--dump`` writes the test
rows as RecBole loaded them (user, target, history; original ids) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

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


def read_parts(files: dict[str, Path], columns: list[str]) -> dict[str, pd.DataFrame]:
    return {part: pd.read_csv(files[part], sep="\t", header=None, names=columns, dtype=str,
                              usecols=range(len(columns)))
            for part in PARTS}


def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by (user, timestamp), stably: equal timestamps keep file order."""
    ts = frame["timestamp"].astype(float)
    return frame.assign(ts=ts).sort_values(["user", "ts"], kind="stable")


def sequential_rows(parts: dict[str, pd.DataFrame], max_len: int) -> dict[str, list[tuple]]:
    """(user, item, history) rows per part, histories the up to ``max_len`` items before."""
    rows: dict[str, list[tuple]] = {part: [] for part in PARTS}
    train = {u: list(g["item"]) for u, g in time_ordered(parts["train"]).groupby("user", sort=False)}
    for user, seq in train.items():
        rows["train"] += [(user, seq[i], seq[max(0, i - max_len):i]) for i in range(1, len(seq))]
    prefix = dict(train)  # after the validation part: training + validation items
    for part in ("valid", "test"):
        for user, g in time_ordered(parts[part]).groupby("user", sort=False):
            seq = prefix.get(user, [])
            for item in g["item"]:
                rows[part].append((user, item, seq[-max_len:]))
                seq = seq + [item]
            prefix[user] = seq
    return rows


def write_sequential_files(rows: dict[str, list[tuple]], root: Path) -> None:
    folder = root / DATASET
    folder.mkdir(parents=True)
    for part in PARTS:
        with open(folder / f"{DATASET}.{part}.inter", "w") as dst:
            dst.write("user_id:token\titem_id:token\titem_id_list:token_seq\n")
            dst.writelines(f"{u}\t{i}\t{' '.join(h)}\n" for u, i, h in rows[part])


def known_mask(dataset, parts: dict[str, pd.DataFrame]):
    """[users, items] bool: the user's training + validation items (RecBole's internal ids)."""
    known = pd.concat([parts["train"], parts["valid"]])
    users = dataset.token2id(dataset.uid_field, known["user"].to_numpy())
    items = dataset.token2id(dataset.iid_field, known["item"].to_numpy())
    mask = np.zeros((dataset.user_num, dataset.item_num), bool)
    mask[users, items] = True
    return mask


def masked_test_metrics(trainer, test_data, mask: np.ndarray, k: int = 10) -> dict[str, float]:
    """NDCG@k and HR@k of the test rows from RecBole's own scores, known items masked."""
    import torch

    trainer.model.eval()
    ndcg, hit, n = 0.0, 0.0, 0
    uid = test_data._dataset.uid_field
    with torch.no_grad():
        for batch in test_data:
            interaction, scores, _, positive_i = trainer._full_sort_batch_eval(batch)
            users = interaction[uid].numpy()
            target = positive_i.numpy()
            scores = scores.numpy().copy()
            known = mask[users]
            known[np.arange(len(users)), target] = False  # the target itself stays rankable
            scores[known] = -np.inf
            rank = (scores > scores[np.arange(len(users)), target][:, None]).sum(axis=1)
            ndcg += float(np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0).sum())
            hit += float((rank < k).sum())
            n += len(users)
    return {f"masked_ndcg@{k}": ndcg / n, f"masked_hit@{k}": hit / n}


def dump_test(dataset, test_data, path: Path) -> None:
    """The test rows as RecBole holds them: user, target, history (original ids), one a line."""
    test = test_data._dataset.inter_feat
    users = dataset.id2token(dataset.uid_field, test[dataset.uid_field].numpy())
    items = dataset.id2token(dataset.iid_field, test[dataset.iid_field].numpy())
    lists, lengths = test[dataset.item_id_list_field].numpy(), test["item_length"].numpy()
    with open(path, "w") as f:
        for u, i, hist, n in zip(users, items, lists, lengths):
            f.write(f"{u}\t{i}\t{' '.join(dataset.id2token(dataset.iid_field, hist[:n]))}\n")


def run(model: str, files: dict[str, Path], params: dict, columns: list[str] | None = None,
        sequential: bool = False, dump: Path | None = None) -> dict:
    from recbole import __version__ as recbole_version
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    with tempfile.TemporaryDirectory(prefix="recbole-run-") as tmp:
        root = Path(tmp)
        params = dict(params)
        budget_s = float(params.pop("budget_s", "inf"))
        max_len = int(params.get("MAX_ITEM_LIST_LENGTH", 50))
        if sequential:
            parts = read_parts(files, columns or ["user", "item"])
            write_sequential_files(sequential_rows(parts, max_len), root)
            load_col = ["user_id", "item_id", "item_id_list"]
            seq_args = {"MAX_ITEM_LIST_LENGTH": max_len, "alias_of_item_id": ["item_id_list"],
                        "train_neg_sample_args": None, "loss_type": "CE"}
        else:
            write_atomic_files(files, root)
            load_col, seq_args = ["user_id", "item_id"], {}
        config_dict = {
            "data_path": str(root), "dataset": DATASET,
            "benchmark_filename": list(PARTS),
            "load_col": {"inter": load_col},
            # the order is RecBole's check only: benchmark files are taken as they are
            "eval_args": {"group_by": "user", "order": "TO" if sequential else "RO",
                          "mode": "full"},
            "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
            "device": "cpu", "use_gpu": False, "seed": 0, "reproducibility": True,
            "checkpoint_dir": str(root / "saved"), "show_progress": False,
            "save_dataset": False, "save_dataloaders": False, "log_wandb": False,
            "state": "INFO",  # per-epoch train and valid times land in the log
            **seq_args, **params,
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
        epochs = time_epochs(trainer, budget_s, start)
        try:
            trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        except BudgetSpent:
            pass  # the best epoch so far is saved; the test below reloads it
        fit_s = time.perf_counter() - start
        result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        out = {"framework": f"RecBole {recbole_version}", "model": model,
               "ndcg@10": float(result["ndcg@10"]), "hit@10": float(result["hit@10"]),
               "fit_s": fit_s, "epochs_run": sum(f for _, f in epochs),
               # seconds a whole epoch takes (a cut one extrapolated from its batches)
               "epoch_s": [t / f for t, f in epochs if f > 0]}
        if sequential:
            out.update(masked_test_metrics(trainer, test_data, known_mask(dataset, parts)))
            out["train_rows"] = len(train_data._dataset)
            if dump:
                dump_test(dataset, test_data, dump)
        return out


class BudgetSpent(Exception):
    """Raised instead of starting an epoch once the time budget is spent."""


class BudgetedBatches:
    """A training loader that stops yielding batches at ``deadline`` (``time.perf_counter``)."""

    def __init__(self, loader, deadline: float):
        self.loader, self.deadline, self.done = loader, deadline, 0

    def __iter__(self):
        for batch in self.loader:
            if time.perf_counter() > self.deadline:
                return
            self.done += 1
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


def time_epochs(trainer, budget_s: float, start_s: float) -> list[tuple[float, float]]:
    """(seconds, fraction of the batches run) of each training epoch, filled in by ``fit``.

    ``"budget_s"`` in ``--params`` bounds the training time (RecBole's ``epochs`` has no clock):
    an epoch still running at the deadline stops after its current batch (its validation still
    runs, so the best parameters are kept), and no epoch starts after it."""
    epochs: list[tuple[float, float]] = []
    train_epoch = trainer._train_epoch

    def timed(train_data, *args, **kwargs):
        start = time.perf_counter()
        if start - start_s > budget_s:
            raise BudgetSpent
        batches = BudgetedBatches(train_data, start_s + budget_s)
        try:
            return train_epoch(batches, *args, **kwargs)
        finally:
            epochs.append((time.perf_counter() - start, batches.done / max(len(train_data), 1)))

    trainer._train_epoch = timed
    return epochs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="RecBole model class name, e.g. BPR")
    for part in PARTS:
        ap.add_argument(f"--{part}", type=Path, required=True)
    ap.add_argument("--params", default="{}", help="JSON object of RecBole config overrides")
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the result")
    ap.add_argument("--columns", default="user,item",
                    help="comma-separated names of the files' columns (sequential models need "
                         "'timestamp' among them), e.g. user,item,rating,timestamp")
    ap.add_argument("--sequential", action="store_true",
                    help="a sequential model: write histories (item_id_list) with each row")
    ap.add_argument("--dump", type=Path, help="with --sequential: file for the test rows")
    args = ap.parse_args(argv)
    files = {part: getattr(args, part).resolve() for part in PARTS}
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value overrides from sys.argv
    args.out.write_text(json.dumps(run(args.model, files, json.loads(args.params),
                                       args.columns.split(","), args.sequential, args.dump)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
