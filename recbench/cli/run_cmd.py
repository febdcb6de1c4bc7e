"""`recbench run` and `recbench leaderboard`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import Experiment, load_experiment
from ..report import leaderboard, to_markdown, to_rich_table
from ..runner import RunOptions, Runner
from ..store import ResultStore
from .common import cache_dir, console, enable_compilation_cache, registry, warn_plugin_errors

FORMATS = ["table", "markdown", "csv", "json"]


def _print_board(records: list[dict], fmt: str, title: str) -> None:
    board = leaderboard(records)
    if board.empty:
        click.echo("no successful trial to show")
    elif fmt == "table":
        console().print(to_rich_table(board, title=title))
    elif fmt == "markdown":
        click.echo(to_markdown(board))
    elif fmt == "csv":
        click.echo(board.to_csv(index=False), nl=False)
    else:
        click.echo(board.to_json(orient="records", indent=1))
    failed = [r for r in records if r.get("status") != "ok"]
    for r in failed:
        click.secho(f"failed: {r['dataset']} / {r['model']} / seed {r['seed']}: "
                    f"{r.get('error', r.get('status'))}", fg="red", err=True)


@click.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--results", "results_dir", type=click.Path(file_okay=False),
              help="Result store directory [default: ./recbench-results/<experiment name>].")
@click.option("--device", type=click.Choice(["cpu", "gpu", "tpu"]),
              help="JAX backend [default: JAX's default].")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Directory holding local copies of datasets (offline use).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def run_command(ctx: click.Context, config: str | None, results_dir: str | None,
                device: str | None, data_dir: str | None, fmt: str) -> None:
    """Run an experiment (TOML); without CONFIG, the default leaderboard on the embedded dataset."""
    experiment = load_experiment(config) if config else Experiment(name="default")
    reg = registry(ctx)
    warn_plugin_errors(reg)
    enable_compilation_cache()
    options = RunOptions(Path(results_dir or Path("recbench-results") / experiment.name),
                         Path(data_dir) if data_dir else None, cache_dir(), device)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("loading data", total=None)
        runner = Runner(experiment, reg, options, progress=lambda done, total, message:
                        bar.update(task, completed=done, total=total, description=message))
        records = runner.run()
    for message in runner.hook_errors:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    _print_board(records, fmt, title=f"{experiment.name} ({experiment.protocol.task}, "
                                     f"split {experiment.protocol.split.name})")
    click.echo(f"results: {options.results_dir}", err=True)


@click.command("leaderboard")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def leaderboard_command(results_dir: str, fmt: str) -> None:
    """Print the leaderboard of every trial stored in RESULTS_DIR."""
    store = ResultStore(results_dir)
    records = list(store.records(include_failed=True))
    for problem in store.unreadable:
        click.secho(f"warning: unreadable record {problem}", fg="yellow", err=True)
    _print_board(records, fmt, title=str(results_dir))


