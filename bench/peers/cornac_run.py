"""Run one Cornac model on a train and a test file and write its test NDCG@10 as JSON.

Executed by ``bench/side_by_side.py`` inside Cornac's own virtual environment (never imports
recbench). Interactions are implicit (every listed pair is a positive, rating 1); Cornac's own
evaluation ranks every training item a user has not seen and, with ``exclude_unknowns=True`` (its
default), drops test pairs whose user or item is not in the training file.
"""

from __future__ import annotations

import sys
from pathlib import Path


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    with open(path) as f:
        return [(*line.split("\t", 2)[:2], 1.0) for line in f if line.strip()]


def make_model(name: str, params: dict):
    import cornac

    models = {"BPR": cornac.models.BPR, "MostPop": cornac.models.MostPop,
              "EASE": cornac.models.EASE}
    if name not in models:
        raise SystemExit(f"cornac_run: unknown model {name!r}; one of {sorted(models)}")
    return models[name](**params)


def run(model: str, train: Path, test: Path, params: dict) -> dict:
    import cornac
    from cornac.eval_methods import BaseMethod
    from cornac.metrics import NDCG

    method = BaseMethod.from_splits(read_pairs(train), read_pairs(test), exclude_unknowns=True,
                                    seed=0, verbose=False)
    result, _ = method.evaluate(make_model(model, params), metrics=[NDCG(k=10)],
                                user_based=True)
    return {"framework": f"Cornac {cornac.__version__}", "model": model,
            "ndcg@10": float(result.metric_avg_results["NDCG@10"]),
            "fit_s": float(result.metric_avg_results["Train (s)"])}


if __name__ == "__main__":
    from _cli import main  # beside this file: the script's folder is on sys.path

    sys.exit(main(run, __doc__, "BPR, MostPop or EASE", "JSON object of model constructor arguments"))
