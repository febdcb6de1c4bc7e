"""Leaderboard: one row per (dataset, model), each metric as mean ± std over seeds, plus costs and
the users evaluated / excluded (from each record's ``counts``).

Rows are ordered by each metric's declared direction, which every record carries
(``record["higher_is_better"]``, from the metric plugin), so a third party's lower-is-better
metric sorts right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from ..config import config_hash

COST_COLUMNS = {"fit_s": "fit s", "eval_s": "eval s"}
COUNT_COLUMNS = {"users_evaluated": "users", "users_excluded": "excluded"}


def setup_of(record: dict[str, Any]) -> str:
    """A short hash of everything that made a trial except its seed (and fold): trials average over
    seeds and folds only when they share it."""
    identity = record.get("identity", {})
    # Each fold reads its own files, so under folds the files' hash varies like the fold does.
    per_replicate = ("seed", "fold", "split_inputs") if "fold" in identity else ("seed",)
    identity = {k: v for k, v in identity.items() if k not in per_replicate}
    return config_hash(identity)[:8]


def trial_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per successful trial: dataset, model, seed, metrics and timings.

    When one (dataset, model) was run under several setups (another split, config or version, e.g.
    in a results directory reused after a change), the model name carries the setup hash, so
    different setups are never averaged together.
    """
    rows = []
    records = [r for r in records if r.get("status") == "ok"]
    setups: dict[tuple[str, str], set[str]] = {}
    for r in records:
        setups.setdefault((r["dataset"], r["model"]), set()).add(setup_of(r))
    for r in records:
        model = r["model"]
        if len(setups[(r["dataset"], model)]) > 1:
            model = f"{model} [{setup_of(r)}]"
        row = {"dataset": r["dataset"], "model": model, "seed": r["seed"]}
        if "fold" in r:
            row["fold"] = r["fold"]
        row.update(r["metrics"])
        # Absent values (e.g. users on a rating task) are left out: they become NaN, shown "-".
        found = {**r.get("timings", {}), **r.get("counts", {})}
        row.update({k: found[k] for k in [*COST_COLUMNS, *COUNT_COLUMNS] if k in found})
        rows.append(row)
    return pd.DataFrame(rows)


def directions(records: Iterable[dict[str, Any]]) -> dict[str, bool]:
    """Metric label -> higher is better, as the metric plugins declared it in the records."""
    out: dict[str, bool] = {}
    for r in records:
        out.update(r.get("higher_is_better", {}))
    out.update({c: False for c in COST_COLUMNS})
    return out


def leaderboard(records: Iterable[dict[str, Any]], sort_by: str | None = None) -> pd.DataFrame:
    """Aggregate over seeds (and folds). Columns: dataset, model, seeds (distinct seeds), folds
    (distinct folds, only under protocol.folds), runs (trials averaged), then
    ``<metric>``/``<metric>_std``.

    Rows are sorted per dataset by ``sort_by`` (default: the first metric), best first by the
    metric's declared direction; a column of unknown direction (records written before directions
    were recorded) keeps the records' order.
    """
    records = list(records)
    frame = trial_frame(records)
    if frame.empty:
        return frame
    values = [c for c in frame.columns if c not in ("dataset", "model", "seed", "fold")]
    grouped = frame.groupby(["dataset", "model"], sort=False)
    mean = grouped[values].mean()
    std = grouped[values].std(ddof=1).fillna(0.0).add_suffix("_std")
    replicates = [grouped["seed"].nunique().rename("seeds")]
    if "fold" in frame:
        replicates.append(grouped["fold"].nunique().rename("folds"))
    replicates.append(grouped.size().rename("runs"))
    out = pd.concat([*replicates, mean, std], axis=1).reset_index()
    key = sort_by or next((c for c in values if c not in COST_COLUMNS and c not in COUNT_COLUMNS),
                          values[0])
    higher = directions(records).get(key)
    if higher is None:
        return out.sort_values("dataset", kind="stable", ignore_index=True)
    return out.sort_values(["dataset", key], ascending=[True, not higher], kind="stable",
                           ignore_index=True)


def _metric_columns(board: pd.DataFrame) -> list[str]:
    return [c for c in board.columns if c not in ("dataset", "model", *REPLICATE_COLUMNS)
            and not c.endswith("_std")]


REPLICATE_COLUMNS = ("seeds", "folds", "runs")


def _replicates_header(board: pd.DataFrame) -> str:
    return "seeds × folds" if "folds" in board else "seeds"


def _replicates(board: pd.DataFrame, i: int) -> str:
    if "folds" in board:
        return f"{board.at[i, 'seeds']} × {board.at[i, 'folds']}"
    return str(board.at[i, "seeds"])


def _cell(board: pd.DataFrame, i: int, col: str) -> str:
    mean, std = board.at[i, col], board.at[i, f"{col}_std"]
    if mean is None or np.isnan(mean):
        return "-"
    if col in COUNT_COLUMNS:
        return f"{mean:.0f}"
    digits = 2 if col in COST_COLUMNS else 4
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if board.at[i, "runs"] > 1 else "")


def _header(col: str) -> str:
    return COST_COLUMNS.get(col, COUNT_COLUMNS.get(col, col))


def to_rich_table(board: pd.DataFrame, title: str = "leaderboard") -> Table:
    table = Table(title=title)
    cols = _metric_columns(board)
    for name in ["dataset", "model", _replicates_header(board), *map(_header, cols)]:
        table.add_column(name, justify="left" if name in ("dataset", "model") else "right")
    for i in range(len(board)):
        table.add_row(board.at[i, "dataset"], board.at[i, "model"], _replicates(board, i),
                      *(_cell(board, i, c) for c in cols))
    return table


def to_markdown(board: pd.DataFrame) -> str:
    cols = _metric_columns(board)
    head = ["dataset", "model", _replicates_header(board), *map(_header, cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i in range(len(board)):
        cells = [board.at[i, "dataset"], board.at[i, "model"], _replicates(board, i),
                 *(_cell(board, i, c) for c in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
