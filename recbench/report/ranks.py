"""Models compared across datasets (Demšar 2006): the Friedman test over the report's tables, the
Nemenyi post-hoc test, and the average ranks with the critical difference a CD diagram draws."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .stats import RankComparison, friedman_nemenyi
from .tables import Report


def score_matrix(report: Report, metric: str, task: str | None = None
                 ) -> tuple[pd.DataFrame, list[str]]:
    """Datasets x models of ``metric`` (mean over seeds), one row per dataset, only the models
    present on every such dataset; the notes say what was left out. Demšar's test assumes
    independent datasets, so a dataset measured under several protocols (warm and cold splits,
    two versions) is left out rather than counted once per protocol."""
    tables = [t for t in report.tables if metric in t.metrics and (task is None
                                                                   or t.card["task"] == task)]
    per_dataset: dict[str, list[Any]] = {}
    for t in tables:
        per_dataset.setdefault(t.card["dataset"], []).append(t)
    notes = [f"{metric}: dataset {name} left out of the comparison across datasets: it is "
             f"measured under {len(ts)} protocols ({', '.join(t.protocol for t in ts)}); compare "
             f"one protocol per dataset (one results directory each)"
             for name, ts in per_dataset.items() if len(ts) > 1]
    rows = {name: dict(zip(ts[0].board["label"], ts[0].board[metric]))
            for name, ts in per_dataset.items() if len(ts) == 1}
    frame = pd.DataFrame(rows).T
    complete = frame.dropna(axis=1)
    notes += [f"{metric}: model {m} left out of the comparison across datasets: not measured on "
              f"every dataset" for m in frame.columns if m not in complete.columns]
    return complete, notes


def across_datasets(report: Report, metric: str, alpha: float = 0.05, task: str | None = None
                    ) -> tuple[RankComparison | None, list[str]]:
    """Friedman + Nemenyi of ``metric`` across the report's datasets; None (with the reason in
    the notes) when fewer than 2 datasets or 3 models are comparable."""
    scores, notes = score_matrix(report, metric, task)
    if scores.shape[0] < 2 or scores.shape[1] < 3:
        notes.append(f"{metric}: no comparison across datasets: needs 3 models measured on at "
                     f"least 2 datasets, got {scores.shape[1]} on {scores.shape[0]}")
        return None, notes
    directions = {t.directions.get(metric) for t in report.tables if metric in t.metrics}
    higher = directions != {False}
    return friedman_nemenyi(scores, higher, alpha), notes


def as_dict(result: RankComparison) -> dict[str, Any]:
    """JSON-ready: what a critical-difference diagram needs."""
    return {"friedman_chi2": result.statistic, "friedman_p": result.pvalue,
            "average_ranks": result.average_ranks.to_dict(),
            "critical_difference": result.critical_difference, "alpha": result.alpha,
            "datasets": result.n_blocks, "nemenyi_p": result.nemenyi.to_dict()}
