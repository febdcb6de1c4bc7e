"""`recbench run` and `recbench leaderboard`."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import Component, Experiment, load_experiment
from ..errors import ConfigError
from ..plugins import BUILTIN_DIST
from ..registry import Registry
from ..report import leaderboard, to_markdown, to_rich_table
from ..runner import RunOptions, Runner, open_dataset, resolve
from ..specs import LoadContext, missing_requirements
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


def default_experiment(reg: Registry) -> Experiment:
    """Every built-in ranking model the embedded dataset can serve, one seed, default protocol."""
    dataset = Experiment().datasets[0]
    spec, cfg = resolve(reg, "dataset", dataset, "default dataset")
    data = open_dataset(spec, cfg, LoadContext(None, cache_dir()))
    models = tuple(Component(name) for name in reg.names("model")
                   if reg.get("model", name).distribution == BUILTIN_DIST
                   and "ranking" in reg.spec("model", name).tasks
                   and not missing_requirements(reg.spec("model", name), data))
    return Experiment(name="default", datasets=(dataset,), models=models)


def only_models(experiment: Experiment, names: tuple[str, ...]) -> Experiment:
    chosen = tuple(m for m in experiment.models if m.display in names or m.name in names)
    unknown = set(names) - {m.display for m in chosen} - {m.name for m in chosen}
    if unknown:
        raise ConfigError(f"--model {sorted(unknown)[0]!r} is not in the experiment; it has "
                          f"{', '.join(m.display for m in experiment.models)}")
    return dataclasses.replace(experiment, models=chosen)


@click.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--results", "results_dir", type=click.Path(file_okay=False),
              help="Result store directory [default: ./recbench-results/<experiment name>].")
@click.option("--device", type=click.Choice(["cpu", "gpu", "tpu"]),
              help="JAX backend [default: JAX's default].")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Directory holding local copies of datasets (offline use).")
@click.option("--model", "models", multiple=True,
              help="Run only these models of the experiment (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def run_command(ctx: click.Context, config: str | None, results_dir: str | None,
                device: str | None, data_dir: str | None, models: tuple[str, ...], fmt: str) -> None:
    """Run an experiment (TOML); without CONFIG, the default leaderboard on the embedded dataset."""
    reg = registry(ctx)
    experiment = load_experiment(config) if config else default_experiment(reg)
    if models:
        experiment = only_models(experiment, models)
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


