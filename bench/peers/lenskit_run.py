"""Run one LensKit scorer on a train and a test file and write its test NDCG@10 as JSON.

Executed by ``bench/side_by_side.py`` inside LensKit's own virtual environment (never imports
recbench). Interactions are implicit (no rating column). LensKit's top-N pipeline ranks the items
known at training time that the user has not rated in training; as with Cornac's
``exclude_unknowns``, test pairs whose user or item is not in the training file are dropped first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd


def read_pairs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, usecols=[0, 1], names=["user_id", "item_id"],
                       dtype=str)


def make_scorer(name: str, params: dict):
    from lenskit.knn import EASEScorer, ItemKNNScorer, UserKNNScorer

    scorers = {"EASE": EASEScorer, "ItemKNN": ItemKNNScorer, "UserKNN": UserKNNScorer}
    if name not in scorers:
        raise SystemExit(f"lenskit_run: unknown model {name!r}; one of {sorted(scorers)}")
    return scorers[name](**params)


def run(model: str, train_path: Path, test_path: Path, params: dict) -> dict:
    import lenskit
    from lenskit.batch import recommend
    from lenskit.data import ItemListCollection, from_interactions_df
    from lenskit.metrics import NDCG, RunAnalysis
    from lenskit.pipeline import topn_pipeline

    train, test = read_pairs(train_path), read_pairs(test_path)
    test = test[test.user_id.isin(train.user_id) & test.item_id.isin(train.item_id)]
    data = from_interactions_df(train, user_col="user_id", item_col="item_id")
    pipe = topn_pipeline(make_scorer(model, params), n=10)
    start = time.perf_counter()
    pipe.train(data)
    fit_s = time.perf_counter() - start
    truth = ItemListCollection.from_df(test, ["user_id"])
    recs = recommend(pipe, truth.keys(), n=10)
    analysis = RunAnalysis()
    analysis.add_metric(NDCG(n=10))
    summary = analysis.measure(recs, truth).list_summary()
    return {"framework": f"LensKit {lenskit.__version__}", "model": model,
            "ndcg@10": float(summary.loc["NDCG@10", "mean"]), "fit_s": fit_s}


if __name__ == "__main__":
    from _cli import main  # beside this file: the script's folder is on sys.path

    sys.exit(main(run, __doc__, "EASE, ItemKNN or UserKNN", "JSON object of scorer config arguments"))
