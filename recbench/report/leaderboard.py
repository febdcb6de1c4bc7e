"""Leaderboard: one row per (dataset, model), each metric as mean ± std over seeds, plus costs and
the users evaluated / excluded (from each record's ``counts``).

Rows are ordered by each metric's declared direction, which every record carries
(``record["higher_is_better"]``, from the metric plugin), so a third party's lower-is-better
metric sorts right.

:func:`trial_frame` is the one table every report reads: a trial per row, with the ``protocol`` it
was made under (:func:`protocol_of`: dataset, protocol and recbench version; numbers of different
protocols are never compared) and its ``label`` within that protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from ..config import config_hash

COST_COLUMNS = {"fit_s": "fit s", "compile_s": "compile s", "eval_s": "eval s",
                "peak_host_mb": "host MiB", "peak_device_mb": "device MiB",
                "n_parameters": "params"}
COUNT_COLUMNS = {"users_evaluated": "users", "users_excluded": "excluded"}
# Columns of trial_frame that name a trial rather than measure it.
ID_COLUMNS = ("dataset", "model", "seed", "fold", "protocol", "label", "setup", "key", "device",
              "family", "name")


def setup_of(record: dict[str, Any]) -> str:
    """A short hash of everything that made a trial except its seed (and fold): trials average over
    seeds and folds only when they share it."""
    identity = record.get("identity", {})
    # Each fold reads its own files, so under folds the files' hash varies like the fold does.
    per_replicate = ("seed", "fold", "split_inputs") if "fold" in identity else ("seed",)
    identity = {k: v for k, v in identity.items() if k not in per_replicate}
    return config_hash(identity)[:8]


def protocol_of(record: dict[str, Any]) -> str:
    """A short hash of what makes numbers comparable: the dataset (name, config, checksum), the
    protocol (task, split, preprocessing, metrics, history, ...) and recbench's version. Each
    report table holds one protocol."""
    identity = record.get("identity")
    if identity is None:  # a record without its identity: only its dataset label is known
        return config_hash({"dataset": record.get("dataset")})[:8]
    return config_hash({k: identity.get(k) for k in ("dataset", "protocol", "recbench")})[:8]


def costs(record: dict[str, Any]) -> dict[str, Any]:
    """The cost columns a record has (absent ones are left out, shown "-")."""
    timings = record.get("timings", {})
    out: dict[str, Any] = {k: timings[k] for k in ("fit_s", "eval_s") if k in timings}
    if "fit_compile_s" in timings:
        out["compile_s"] = timings["fit_compile_s"] + timings.get("eval_compile_s", 0.0)
    memory = record.get("memory", {})
    for k in ("peak_host_mb", "peak_device_mb"):
        if memory.get(k) is not None:
            out[k] = memory[k]
    if "n_parameters" in record:
        out["n_parameters"] = record["n_parameters"]
    hardware = record.get("provenance", {}).get("hardware", {})
    if "device_kind" in hardware:
        out["device"] = f"{hardware.get('platform', '')}:{hardware['device_kind']}"
    return out


def trial_frame(records: Iterable[dict[str, Any]],
                families: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per successful trial: dataset, model, seed, metrics, costs and counts, plus
    ``protocol`` (:func:`protocol_of`), ``setup`` (:func:`setup_of`), ``key``, ``name`` (the model
    plugin), ``family`` (from ``families``, plugin name -> family, when given) and ``label``.

    When one (dataset, model) was run under several setups (another split, config or version, e.g.
    in a results directory reused after a change), the model name carries the setup hash, so
    different setups are never averaged together. ``label`` carries it only when the setups differ
    within one protocol (the name a per-protocol table shows).
    """
    rows = []
    records = [r for r in records if r.get("status") == "ok"]
    setups: dict[tuple[str, ...], set[str]] = {}
    for r in records:
        setups.setdefault((r["dataset"], r["model"]), set()).add(setup_of(r))
        setups.setdefault((protocol_of(r), r["model"]), set()).add(setup_of(r))
    for r in records:
        model = label = r["model"]
        if len(setups[(r["dataset"], model)]) > 1:
            model = f"{model} [{setup_of(r)}]"
        if len(setups[(protocol_of(r), label)]) > 1:
            label = f"{label} [{setup_of(r)}]"
        name = r.get("identity", {}).get("model", {}).get("name", r["model"])
        row = {"dataset": r["dataset"], "model": model, "seed": r["seed"]}
        if "fold" in r:
            row["fold"] = r["fold"]
        row.update(r["metrics"])
        # Absent values (e.g. users on a rating task) are left out: they become NaN, shown "-".
        row.update(costs(r))
        found = r.get("counts", {})
        row.update({k: found[k] for k in COUNT_COLUMNS if k in found})
        row.update(protocol=protocol_of(r), label=label, setup=setup_of(r), key=r.get("key", ""),
                   name=name, family=(families or {}).get(name, "unknown"))
        rows.append(row)
    return pd.DataFrame(rows)


def value_columns(frame: pd.DataFrame) -> list[str]:
    """The measured (numeric) columns of a trial frame: metrics, costs, counts."""
    return [c for c in frame.columns
            if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])]


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
    values = value_columns(frame)
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
