"""`recbench leaderboard` and `recbench report`: per-protocol tables of a results directory."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, PluginError
from ..registry import Registry
from ..report.card import card_lines
from ..report.export import to_csv, to_json, to_latex, to_markdown, to_rich, to_rows_json
from ..report.stats import CORRECTIONS, INTERVALS, TESTS
from ..report.tables import Report, build_report
from ..store import ResultStore
from .common import console, registry

BOARD_FORMATS = ["table", "markdown", "latex", "csv", "json"]
REPORT_FORMATS = ["markdown", "latex", "csv", "json", "html"]
RENDER = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json}
# The leaderboard's JSON is its rows (one list, each row labelled with its protocol); the report's
# is the whole document (cards, rows, tests, notes).
BOARD_RENDER = {**RENDER, "json": to_rows_json}


def families(reg: Registry, records: list[dict[str, Any]]) -> dict[str, str]:
    """Model plugin name -> its family, for the models of ``records`` that do not store theirs
    (records written before they did), where the registry can build them now."""
    needed = {r.get("identity", {}).get("model", {}).get("name", r.get("model"))
              for r in records if not r.get("family")}
    found = {}
    for name in sorted(needed & set(reg.names("model"))):
        with contextlib.suppress(PluginError):  # cannot be built now: the family stays unknown
            found[name] = reg.model(name).family
    return found


def metric_descriptions(reg: Registry) -> dict[str, str]:
    return {name: reg.metric(name).description for name in reg.names("metric")}


def report_of(records: list[dict[str, Any]], store: ResultStore, reg: Registry,
              test: str = "ttest", correction: str = "holm", alpha: float = 0.05,
              interval: str = "users") -> Report:
    return build_report(records, store, families(reg, records), metric_descriptions(reg),
                        test=test, correction=correction, alpha=alpha, interval=interval)


def read_store(results_dir: str | Path) -> tuple[ResultStore, list[dict[str, Any]]]:
    store = ResultStore(results_dir)
    records = list(store.records(include_failed=True))
    return store, records


def show_skipped(report: Report, store: ResultStore) -> None:
    """What the report left out and why, on stderr (never silently)."""
    for problem in store.unreadable:
        click.secho(f"skipped: unreadable record {problem}", fg="yellow", err=True)
    for note in report.notes:
        click.secho(f"skipped: {note}", fg="yellow", err=True)
    for table in report.tables:
        for note in table.notes:
            click.secho(f"note ({table.card['dataset']}, protocol {table.protocol}): {note}",
                        fg="yellow", err=True)


def print_report(report: Report, fmt: str) -> None:
    if not report.tables:
        click.echo("no successful trial to show")
        return
    if fmt == "table":
        out = console()
        for table in report.tables:
            out.print(to_rich(table))
            for line in card_lines(table.card):  # the protocol card, under its table
                out.print(f"  {line}", style="dim", markup=False, highlight=False)
            out.print()
        return
    click.echo(BOARD_RENDER[fmt](report), nl=False)


def stats_options(f: Any) -> Any:
    f = click.option("--interval", type=click.Choice(list(INTERVALS)), default="users",
                     show_default=True, help="The CI column: users (percentile bootstrap over "
                     "users) or runs (Student t over the runs' means: seeds x folds).")(f)
    f = click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=0.05, show_default=True, help="Significance level.")(f)
    f = click.option("--correction", type=click.Choice(list(CORRECTIONS)), default="holm",
                     show_default=True, help="Multiple-comparison correction across all pairs "
                     "(holm: family-wise error; bh: Benjamini-Hochberg false discovery rate).")(f)
    return click.option("--test", type=click.Choice(list(TESTS)), default="ttest",
                        show_default=True, help="Paired per-user test that marks significance.")(f)


@click.command("leaderboard")
@click.argument("results_dir", required=False, type=click.Path(file_okay=False),
                default="recbench-results/default")
@click.option("--format", "fmt", type=click.Choice(BOARD_FORMATS), default="table",
              show_default=True)
@stats_options
@click.pass_context
def leaderboard_command(ctx: click.Context, results_dir: str, fmt: str, test: str,
                        correction: str, alpha: float, interval: str) -> None:
    """Print the leaderboard of every trial stored in RESULTS_DIR [default:
    recbench-results/default]: one table per dataset and protocol, under its protocol card."""
    if not Path(results_dir).is_dir():
        raise ConfigError(f"results directory {results_dir} does not exist; run `recbench run` "
                          f"first or name another directory")
    store, records = read_store(results_dir)
    report = report_of(records, store, registry(ctx), test, correction, alpha, interval)
    print_report(report, fmt)
    show_skipped(report, store)


@click.command("report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="markdown",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the report to this file [default: stdout].")
@stats_options
@click.pass_context
def report_command(ctx: click.Context, results_dir: str, fmt: str, output: str | None, test: str,
                   correction: str, alpha: float, interval: str) -> None:
    """Export the tables of RESULTS_DIR (Markdown, LaTeX with booktabs, CSV, JSON, or one
    self-contained HTML page with plots): each table under its protocol card, best values in bold,
    significant differences to the best marked."""
    store, records = read_store(results_dir)
    report = report_of(records, store, registry(ctx), test, correction, alpha, interval)
    if fmt == "html":  # one self-contained page: tables, cards and plots
        from ..report.html import report_html  # matplotlib: only for this format

        text = report_html(report, store, title=f"recbench report: {Path(results_dir).name}")
    else:
        text = RENDER[fmt](report)
    text = text if report.tables else ""
    if output:
        Path(output).write_text(text)
        click.echo(f"wrote {output} ({len(report.tables)} tables)", err=True)
    elif text:
        click.echo(text, nl=False)
    else:
        click.echo("no successful trial to show", err=True)
    show_skipped(report, store)
