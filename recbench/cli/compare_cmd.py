"""`recbench compare`: the technology comparison, run (or read from the store) and printed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ..config import Component, Protocol
from ..preprocess import apply as preprocess
from ..report import compare
from ..report.card import card_lines
from ..report.export import SIG_MARK
from ..report.leaderboard import protocol_of
from ..runner import RunOptions, Runner, open_dataset, resolve
from ..specs import LoadContext
from .common import cache_dir, console, enable_compilation_cache, registry, warn_plugin_errors
from .report_cmd import report_of, show_skipped
from .run_cmd import _trial_line_printer

FORMATS = ["table", "markdown", "csv", "json"]


@click.command("compare")
@click.option("--dataset", default="online-retail", show_default=True,
              help="Dataset plugin to compare on (e.g. ml-100k with --data-dir).")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="RECBENCH_DATA_DIR",
              help="Directory holding local copies of datasets [default: $RECBENCH_DATA_DIR].")
@click.option("--results", "results_dir", type=click.Path(file_okay=False),
              help="Result store [default: ./recbench-results/compare-<dataset>]; stored trials "
                   "are read, not re-run.")
@click.option("--protocol", "protocols", multiple=True, type=click.Choice(list(compare.PROTOCOLS)),
              help="Protocols to include (repeatable) [default: all the data supports].")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option("--model", "models", multiple=True,
              help="Choose among these models only (repeatable) [default: every registered one].")
@click.option("--all-models", is_flag=True,
              help="Every registered model, not the light grid's one per family.")
@click.option("--full", is_flag=True,
              help="Each model's own settings instead of the light ones (much slower).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No per-trial lines.")
@click.pass_context
def compare_command(ctx: click.Context, dataset: str, data_dir: str | None,
                    results_dir: str | None, protocols: tuple[str, ...], seeds: str,
                    models: tuple[str, ...], all_models: bool, full: bool, fmt: str,
                    quiet: bool) -> None:
    """Compare the model families (baselines, collaborative filtering, latent factors, neural,
    content, sequential: whatever the registry holds) on one dataset under several protocols:
    top-K ranking, cold-start ranking on held-out items, binary interaction prediction (accuracy,
    ROC AUC) and rating error (MSE, RMSE) where the data has ratings; with their costs.

    Without options: the light grid (recbench.report.compare.LIGHT_GRID), one built-in model
    per family and protocol under the light settings of recbench.light (labels say "light"),
    about two minutes on 2 CPU cores; a plugin's new family gets its cheapest model. --model
    chooses among some (one per family), --all-models runs every model, --full each model's own
    settings. Stored trials are read, not re-run.
    """
    start = time.perf_counter()
    reg = registry(ctx)
    warn_plugin_errors(reg)
    enable_compilation_cache()
    component = Component(dataset)
    d = resolve(reg.dataset, component, "--dataset")
    ds = preprocess(open_dataset(d.spec, d.config, LoadContext(
        Path(data_dir) if data_dir else None, cache_dir())), Protocol().preprocess)
    planned, notes = compare.grid(reg, component, ds, tuple(int(s) for s in seeds.split(",")),
                                  protocols or tuple(compare.PROTOCOLS), all_models, full,
                                  models)
    del ds
    results = Path(results_dir or Path("recbench-results") / f"compare-{dataset}")
    options = RunOptions(results, Path(data_dir) if data_dir else None, cache_dir(),
                         unmet_requirements="skip")
    records: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    store = None
    for plan in planned:
        if not quiet:
            _show_plan(plan)
        runner = Runner(plan.experiment, reg, options,
                        on_trial=None if quiet else _trial_line_printer(False))
        run = runner.run()
        store = runner.store
        notes += [f"protocol {plan.name}: left out: {m}" for m in runner.skipped]
        if run:
            ids[plan.name] = protocol_of(run[0])
        records += run
    if store is None:
        click.echo("nothing to compare", err=True)
        return
    report = report_of(records, store, reg)
    table = compare.comparison(report, ids)
    families = compare.by_family(report, ids)
    _print(fmt, table, families, report, ids)
    for note in notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    show_skipped(report, store)
    click.echo(f"results: {results} ({time.perf_counter() - start:.0f} s)", err=True)


def _show_plan(plan: compare.Planned) -> None:
    """The protocol's models, and the settings each light one trains under (stderr)."""
    models = plan.experiment.models
    click.echo(f"protocol {plan.name}: {', '.join(m.display for m in models)}", err=True)
    for m in models:
        if m.config:
            click.echo(f"  {m.display}: {json.dumps(m.config, separators=(',', ':'))}", err=True)


def _print(fmt: str, table: Any, families: Any, report: Any, ids: dict[str, str]) -> None:
    cards = {name: t for name, pid in ids.items() for t in report.tables if t.protocol == pid}
    if fmt == "csv":
        click.echo(table.to_csv(index=False).replace("**", ""), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps({"models": json.loads(table.to_json(orient="records")),
                               "families": json.loads(families.to_json(orient="records")),
                               "protocols": {n: t.card for n, t in cards.items()}},
                              indent=1, default=str))
        return
    tested = any(not t.tests.empty for t in cards.values())  # † appears in some column
    text = ["## Comparison by model", "", compare.markdown(table), "",
            "Each column: a metric under its protocol (cards below); mean ± std over seeds, the "
            "best of each column in bold" + ("" if not tested else f"; {SIG_MARK}: differs from it "
            "significantly (paired t-test over users, Holm-corrected, α = 0.05)")
            + f"; costs from the {compare.COST_PROTOCOL} protocol (else the one named in the cell)"
            + ("; (light: ...): trained lighter than the model's own settings (--full for those)"
               if table["model"].str.contains("light").any() else "") + ".", "",
            "## Best model per family", "", compare.markdown(families), "", "## Protocols", ""]
    for name, t in cards.items():
        # No interval column in the comparison, so no interval line on its cards.
        text += [f"**{name}** (protocol {t.protocol}):",
                 *(f"- {line}" for line in card_lines(t.card, interval=False)), ""]
    if fmt == "markdown":
        click.echo("\n".join(text))
    else:
        console().print("\n".join(text).replace("**", ""), markup=False, highlight=False)
