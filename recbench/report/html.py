"""A self-contained HTML report: one file, no external asset, no script, no network.

:func:`render_html` lays out :class:`Section` s (a protocol card, tables, plots embedded as base64
PNG with alt text, notes). :func:`report_html` renders a :class:`~.tables.Report` (what
``recbench report --format html`` writes): each table with its card, best values in bold and
significance marks, its plots (accuracy vs cost, per family, per-user values), and Demšar's
critical-difference diagram for each metric compared across datasets.
:func:`report_from_results` is a lighter report of a results directory straight from its trial
records (no statistics).

    python -m recbench.report.html RESULTS_DIR -o report.html
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..config import config_hash
from ..errors import RecbenchError
from ..store import ResultStore, StoreError
from . import export, plots
from .card import card_lines
from .leaderboard import directions, trial_frame
from .ranks import across_datasets
from .tables import Report, ReportTable

COSTS = ("fit_s", "eval_s")
KEYS = ("dataset", "model", "family", "seed", "fold", "users_evaluated", "users_excluded")

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 96em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; }
th { border-bottom: 2px solid #555; }
td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }  /* model, family */
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }
dl.card { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em;
          background: #f6f6f6; padding: 0.8em; font-size: 0.9em; }
dl.card dt { font-weight: bold; }
dl.card dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; }
figure { margin: 1em 0 2em; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; height: auto; } div.wide { overflow-x: auto; }
.notes li { color: #8a4b00; } p.legend { font-size: 0.85em; color: #555; margin-top: 0; }
"""


@dataclass(frozen=True)
class Plot:
    """A figure to embed: its caption and the alt text a screen reader says instead."""

    caption: str
    alt: str
    png: bytes

    @classmethod
    def of(cls, fig: Figure, caption: str, alt: str) -> Plot:
        return cls(caption, alt, plots.png(fig))


@dataclass(frozen=True)
class Section:
    """One part of the report. ``tables``: (caption, table) pairs, a DataFrame (escaped) or an HTML
    string inserted as is (trusted: made by recbench's exporters); ``notes``: what was skipped and
    why, shown before the tables."""

    title: str
    card: Mapping[str, str] = field(default_factory=dict)
    tables: Sequence[tuple[str, pd.DataFrame | str]] = ()
    plots: Sequence[Plot] = ()
    notes: Sequence[str] = ()


def _table(caption: str, table: pd.DataFrame | str) -> str:
    if isinstance(table, str):
        return f'<div class="wide">{table}</div>'
    body = table.to_html(index=False, border=0, na_rep="-", escape=True)
    body = body.replace("<thead>", f"<caption>{html.escape(caption)}</caption>\n<thead>", 1)
    return f'<div class="wide">{body}</div>'  # a table wider than the page scrolls by itself


def _plot(plot: Plot) -> str:
    src = plots.data_uri(plot.png)
    return (f'<figure><img src="{src}" alt="{html.escape(plot.alt)}">'
            f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>")


def _notes(notes: Sequence[str], shown: int = 5) -> str:
    """A list of notes; a long one folded under a summary (<details>: no script needed)."""
    if not notes:
        return ""
    items = '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
    if len(notes) <= shown:
        return items
    return f"<details><summary>{len(notes)} notes: what was skipped or not tested, and why" \
           f"</summary>{items}</details>"


def _section(section: Section) -> str:
    out = [f"<section><h2>{html.escape(section.title)}</h2>"]
    if section.card:
        out.append('<dl class="card">' + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in section.card.items())
            + "</dl>")
    out.append(_notes(section.notes))
    out += [_table(caption, table) for caption, table in section.tables]
    out += [_plot(p) for p in section.plots]
    return "\n".join(out) + "</section>"


def render_html(sections: Sequence[Section], title: str, *, notes: Sequence[str] = ()) -> str:
    """The whole report as one HTML document (UTF-8, no external reference: the icon is an empty
    data URI so a browser does not ask for /favicon.ico)."""
    head = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>")
    return head + _notes(notes) + "\n".join(_section(s) for s in sections) + "</body></html>\n"


# ---------------------------------------------------------------- from a results directory


def protocol_card(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """What the trials of one section share: data, split, candidates, metrics, replicates."""
    first = records[0]["identity"]
    protocol = first["protocol"]
    seeds = sorted({r["seed"] for r in records})
    folds = sorted({r["fold"] for r in records if "fold" in r})
    fingerprints = sorted({r["provenance"]["split_fingerprint"][:12] for r in records})
    card = {
        "dataset": f"{first['dataset']['name']} {json.dumps(first['dataset']['config'])}",
        "data checksum": first["dataset"]["checksum"],
        "task": protocol["task"],
        "preprocessing": json.dumps(protocol["preprocess"]),
        "split": f"{protocol['split']['name']} {json.dumps(protocol['split']['config'])}",
        "split fingerprints": ", ".join(fingerprints),
        "metrics": ", ".join(protocol["metrics"]) + (
            f" at K = {', '.join(map(str, protocol['ks']))}" if protocol["task"] == "ranking"
            else ""),
        "seeds": ", ".join(map(str, seeds)) + (f"; folds {', '.join(map(str, folds))}"
                                              if folds else ""),
        "recbench": ", ".join(sorted({r["identity"]["recbench"] for r in records})),
    }
    if protocol["task"] == "ranking":
        masked = "training" + (" and validation" if protocol.get("mask_valid_in_test") else "")
        pool = ("only the cold items (no training interactions)"
                if protocol.get("candidates", "all") == "cold" else "all items")
        card["candidates"] = f"{pool}, {masked} items of the user masked; ties by item index"
        card["history"] = str(protocol.get("history"))
    return card


def model_board(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model of a trial frame with a ``family`` column (one dataset and protocol): the
    family, run count, then each metric's and cost's mean and ``_std`` over the runs."""
    # Numbers only: a trial frame may carry text columns too (keys, hashes, device names).
    values = [c for c in frame.select_dtypes("number").columns if c not in KEYS]
    grouped = frame.groupby("model", sort=False)
    return pd.concat([grouped["family"].first(), grouped.size().rename("runs"),
                      grouped[values].mean(), grouped[values].std(ddof=1).add_suffix("_std")],
                     axis=1).reset_index()


def _formatted(board: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    def cell(mean: float, std: float, digits: int) -> str:
        if np.isnan(mean):
            return "-"
        return f"{mean:.{digits}f}" + ("" if np.isnan(std) else f" ± {std:.{digits}f}")

    out = board[["model", "family", "runs"]].copy()
    for col in metrics + [c for c in COSTS if c in board]:
        digits = 2 if col in COSTS else 4
        out[col.replace("_s", " s") if col in COSTS else col] = [
            cell(m, s, digits) for m, s in zip(board[col], board[f"{col}_std"])]
    return out


def _per_user(store: ResultStore, records: list[dict[str, Any]], metric: str,
              notes: list[str]) -> dict[str, np.ndarray]:
    """Per-user values of ``metric`` for each model, from its first trial (lowest seed, fold): one
    split, so every model's distribution is over the same users."""
    first: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["seed"], r.get("fold", 0))):
        first.setdefault(r["model"], r)
    out = {}
    for model, r in first.items():
        try:
            values = store.per_user(r["key"]).get(metric)
        except StoreError as e:
            notes.append(f"per-user values of {model} skipped: {e}")
            continue
        if values is not None:
            out[model] = values
    return out


def headline_metric(metrics: Sequence[str]) -> str:
    """The metric the plots show: the first NDCG when there is one (the ranking metric papers
    lead with), else the protocol's first metric (RMSE for rating, ...)."""
    return next((m for m in metrics if m.startswith("ndcg")), metrics[0])


def dataset_section(store: ResultStore, records: list[dict[str, Any]],
                    families: Mapping[str, str], metric: str | None = None) -> Section:
    """The section of one (dataset, protocol): card, per-model table (sorted by ``metric``) and
    plots of ``metric`` (default :func:`headline_metric`)."""
    frame = trial_frame(records)  # one row per record, in order (all are successes)
    frame["family"] = [families.get(r["identity"]["model"]["name"], "unknown") for r in records]
    metrics = list(records[0]["metrics"])
    known = directions(records)
    higher = {m: known.get(m, True) for m in metrics}
    metric = metric if metric in metrics else headline_metric(metrics)
    board = model_board(frame).sort_values(metric, ascending=not higher[metric], kind="stable",
                                           ignore_index=True)
    direction = "higher" if higher[metric] else "lower"
    notes = [f"{m}: direction not recorded (records older than higher_is_better); sorted as "
             f"higher is better" for m in metrics if m not in known]
    figures = []
    if "fit_s" in board:
        front = board["model"][plots.pareto_front(board["fit_s"], board[metric],
                                                  higher[metric])].tolist()
        figures.append(Plot.of(
            plots.accuracy_vs_cost(board, metric, higher_is_better=higher[metric]),
            f"{metric} against mean fit time per model; the dashed line joins the Pareto front "
            f"(no model is both cheaper and better).",
            f"Scatter plot of {metric} ({direction} is better) against fit time on a log axis for "
            f"{len(board)} models; Pareto front: {', '.join(front)}."))
    figures.append(Plot.of(
        plots.by_family(board, metric, higher_is_better=higher[metric]),
        f"{metric} per model, grouped by model family (mean over runs, std as error bars).",
        f"Dot plot of {metric} for {len(board)} models in {board['family'].nunique()} families; "
        f"best: {board['model'].iloc[0]} ({board[metric].iloc[0]:.4f})."))
    per_user = _per_user(store, records, metric, notes)
    if per_user:
        ordered = {m: per_user[m] for m in board["model"] if m in per_user}
        figures.append(Plot.of(
            plots.per_user_distribution(ordered, metric),
            f"Distribution of per-user {metric} on one split (the lowest seed) for each model.",
            f"Box plots of per-user {metric} for {len(ordered)} models, "
            f"{len(next(iter(ordered.values())))} users each."))
    else:
        notes.append(f"no per-user values of {metric} stored: no distribution plot")
    split = records[0]["identity"]["protocol"]["split"]["name"]
    return Section(f"{records[0]['dataset']} ({records[0]['identity']['protocol']['task']}, "
                   f"{split} split)", protocol_card(records),
                   [(f"{records[0]['dataset']}: mean ± std over runs", _formatted(board, metrics))],
                   figures, notes)


def critical_difference_section(ranks: Mapping[str, float], cd: float, *, alpha: float,
                                 n_datasets: int, metric: str) -> Section:
    """A section with Demšar's diagram of average ranks over datasets (from a Friedman/Nemenyi
    comparison: ranks per model and the critical difference)."""
    best = min(ranks, key=ranks.__getitem__)
    fig = plots.critical_difference(ranks, cd, alpha=alpha,
                                    title=f"average rank by {metric} over {n_datasets} datasets")
    return Section(f"Ranks over {n_datasets} datasets ({metric})", plots=[Plot.of(
        fig, f"Average rank of each model by {metric} over {n_datasets} datasets; models joined by "
             f"a thick line do not differ significantly (Nemenyi, α = {alpha:g}, CD = {cd:.2f}).",
        f"Critical-difference diagram of {len(ranks)} models; best average rank: {best} "
        f"({ranks[best]:.2f}); critical difference {cd:.2f}.")])


def _card(table: ReportTable) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in card_lines(table.card))


def _table_html(table: ReportTable) -> str:
    """The table as ``export`` renders it (best in bold, † for significant differences)."""
    cols = export.columns(table)
    bold = ("\x00", "\x01")  # placeholders: the cell text is escaped, then they become tags
    rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in cols) + "</tr>"]
    for i in range(len(table.board)):
        cells = (html.escape(export.cell(table, i, k, bold=bold)).replace(
            bold[0], "<b>").replace(bold[1], "</b>") for k, _ in cols)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<div class="wide"><table><caption>{html.escape(export.title(table))}</caption>'
            f"<thead>{rows[0]}</thead><tbody>{''.join(rows[1:])}</tbody></table>"
            f'<p class="legend">{html.escape(export.legend(table))}</p></div>')


def _table_plots(table: ReportTable, store: ResultStore | None, notes: list[str]) -> list[Plot]:
    if table.primary is None:
        return []
    metric, higher = table.primary, table.directions.get(table.primary) is not False
    direction = "higher" if higher else "lower"
    # The plots name a row by its label (the model's label, with its setup hash when needed).
    board = table.board.rename(columns={"model": "plugin", "label": "model"})
    if (board["runs"] <= 1).all():  # one run each: no spread to draw
        board = board.drop(columns=f"{metric}_std", errors="ignore")
    out = []
    if "fit_s" in board and board["fit_s"].notna().any():
        front = board["model"][plots.pareto_front(board["fit_s"], board[metric], higher)]
        out.append(Plot.of(
            plots.accuracy_vs_cost(board, metric, higher_is_better=higher),
            f"{metric} against mean fit time per model; the dashed line joins the Pareto front "
            f"(no model is both cheaper and better).",
            f"Scatter plot of {metric} ({direction} is better) against fit time on a log axis for "
            f"{len(board)} models; Pareto front: {', '.join(front)}."))
    out.append(Plot.of(
        plots.by_family(board, metric, higher_is_better=higher),
        f"{metric} per model, grouped by model family (mean, std over runs as error bars).",
        f"Dot plot of {metric} for {len(board)} models in {board['family'].nunique()} families; "
        f"best: {board['model'].iloc[0]} ({board[metric].iloc[0]:.4f})."))
    values: dict[str, np.ndarray] = {}
    for model, keys in zip(board["model"], board["keys"]):
        if store is None:
            break
        try:  # the first trial of the row: one split, the same users for every model
            found = store.per_user(keys[0]).get(metric)
        except StoreError as e:
            notes.append(f"per-user values of {model} skipped: {e}")
            continue
        if found is not None:
            values[model] = found
    if values:
        out.append(Plot.of(
            plots.per_user_distribution(values, metric),
            f"Distribution of per-user {metric} on one split (each model's first trial).",
            f"Box plots of per-user {metric} for {len(values)} models."))
    return out


def report_html(report: Report, store: ResultStore | None = None, *,
                title: str = "recbench report", extra: Sequence[Section] = ()) -> str:
    """The whole :class:`~.tables.Report` as one self-contained HTML page (``store``: where the
    per-user values for the distribution plots are; without it those plots are left out;
    ``extra``: further sections, appended)."""
    sections = []
    for table in report.tables:
        notes = list(table.notes)
        figures = _table_plots(table, store, notes)
        sections.append(Section(export.title(table), _card(table), [("", _table_html(table))],
                                figures, notes))
    ranked_notes: list[str] = []
    for metric in export.compared_metrics(report):
        result, why = across_datasets(report, metric)
        ranked_notes += why
        if result is not None:
            sections.append(critical_difference_section(
                result.average_ranks.to_dict(), result.critical_difference, alpha=result.alpha,
                n_datasets=result.n_blocks, metric=metric))
    skipped = [f"skipped: unreadable record {u}" for u in (store.unreadable if store else [])]
    skipped += [f"skipped: {n}" for n in report.notes] + ranked_notes
    return render_html([*sections, *extra], title, notes=skipped)


def registry_families() -> dict[str, str]:
    """Model plugin name -> family, from every installed plugin."""
    from ..plugins import load_plugins  # builds the registry: only when the caller has no map
    from ..registry import Registry

    registry = Registry.build(load_plugins())
    return {name: registry.model(name).family for name in registry.usable("model")}


def report_from_results(results_dir: str | Path, *, title: str | None = None,
                        families: Mapping[str, str] | None = None, metric: str | None = None,
                        extra: Sequence[Section] = ()) -> str:
    """A complete report of a results directory. ``families``: model plugin name -> family
    (default: from the installed plugins); ``metric``: the one to sort by and plot, where a
    section has it (default :func:`headline_metric`); ``extra``: further sections (statistics, a
    critical-difference diagram) appended as given. Damaged records, failed trials and models
    without family are listed in the report, never silently dropped."""
    store = ResultStore(results_dir)
    if not store.root.is_dir():
        raise RecbenchError(f"results directory {store.root} does not exist; pass the directory "
                            f"`recbench run --results` wrote to")
    everything = list(store.records(include_failed=True))
    ok = [r for r in everything if r.get("status") == "ok"]
    complete = [r for r in ok if isinstance(r.get("identity"), dict)
                and isinstance(r.get("provenance"), dict)]
    notes = [f"skipped damaged record {u}" for u in store.unreadable]
    notes += [f"skipped record {r.get('key')}: it has no identity or provenance (not written by "
              "`recbench run`)" for r in ok if r not in complete]
    notes += [f"{r.get('dataset')} / {r.get('model')} seed {r.get('seed')}: "
              f"{r.get('reason', 'cannot serve this protocol')}"
              for r in everything if r.get("status") == "unsupported"]
    notes += [f"failed trial not reported: {r.get('dataset')} / {r.get('model')} seed "
              f"{r.get('seed')} ({r.get('stage', '?')}: {r.get('error', '?')})"
              for r in everything if r.get("status") not in ("ok", "unsupported")]
    ok = complete
    if not ok:
        raise RecbenchError(f"{store.root} holds no successful trial record to report"
                            + (f" ({'; '.join(notes)})" if notes else "")
                            + "; run `recbench run` with --results pointing there first")
    families = registry_families() if families is None else families
    notes += [f"model {m}: family unknown (its plugin is not installed)" for m in
              sorted({r["identity"]["model"]["name"] for r in ok} - set(families))]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in ok:  # never one table across datasets or protocols
        groups.setdefault((r["dataset"], config_hash(r["identity"]["protocol"])), []).append(r)
    sections = [dataset_section(store, group, families, metric) for group in groups.values()]
    return render_html([*sections, *extra], title or f"recbench report: {store.root.name}",
                       notes=notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recbench.report.html",
                                     description="Write a self-contained HTML report.")
    parser.add_argument("results_dir")
    parser.add_argument("-o", "--output", default="report.html")
    parser.add_argument("--title")
    parser.add_argument("--metric", help="the metric to sort by and plot (default: NDCG, else "
                                         "the protocol's first)")
    args = parser.parse_args(argv)
    try:
        text = report_from_results(args.results_dir, title=args.title, metric=args.metric)
    except RecbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
