"""`recbench run` and `recbench leaderboard`."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import Component, Experiment, load_experiment
from ..errors import ConfigError
from ..plugins import BUILTIN_DIST
from ..registry import Registry
from ..report import leaderboard, to_markdown, to_rich_table
from ..records import TrialRecord
from ..runner import RunOptions, Runner
from ..store import ResultStore
from .common import (EXIT_TRIALS_FAILED, cache_dir, console, enable_compilation_cache, registry,
                     warn_plugin_errors)

FORMATS = ["table", "markdown", "csv", "json"]


def current_failures(records: list[TrialRecord]) -> list[TrialRecord]:
    """The failed trials not superseded by a later success of the same dataset, model, seed and
    fold (e.g. a failure fixed by a code change, which gives the trial a new key)."""
    def where(r: TrialRecord) -> tuple:
        return r["dataset"], r["model"], r["seed"], r.get("fold")

    latest_ok: dict[tuple, str] = {}
    for r in records:
        if r.get("status") == "ok":
            latest_ok[where(r)] = max(latest_ok.get(where(r), ""), r.get("started", ""))
    return [r for r in records if r.get("status") not in ("ok", "unsupported")
            and not latest_ok.get(where(r), "") > r.get("started", "")]


def unsupported(records: list[TrialRecord]) -> list[str]:
    """One line per (dataset, model) whose trials the model cannot serve, with the reason (e.g.
    a CF model on a cold-item split: "cannot serve cold items")."""
    seen: dict[tuple[str, str, str], int] = {}
    for r in records:
        if r.get("status") == "unsupported":
            where = (r["dataset"], r["model"], r.get("reason", "unsupported"))
            seen[where] = seen.get(where, 0) + 1
    return [f"{d} / {m}: {why} ({n} trial{'s' * (n > 1)})" for (d, m, why), n in seen.items()]


def replicate(record: TrialRecord) -> str:
    """``seed S``, or ``seed S fold F`` under protocol.folds."""
    return f"seed {record['seed']}" + (f" fold {record['fold']}" if "fold" in record else "")


def _print_board(records: list[dict], fmt: str, title: str) -> None:
    board = leaderboard(records)
    not_served = unsupported(records)
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
    if any(k.startswith("log_loss") for r in records for k in r.get("metrics", {})):
        click.echo("reference: a constant prediction of 0.5 has log loss ln 2 = 0.6931; `random` "
                   "predicts the training positive rate, the best constant", err=True)
    for line in not_served:  # part of the leaderboard in the human formats, a note otherwise
        click.echo(("" if fmt in ("csv", "json") else "- ") + line, err=fmt in ("csv", "json"))
    for r in current_failures(records):
        click.secho(f"failed: {r['dataset']} / {r['model']} / {replicate(r)}: "
                    f"{r.get('error', r.get('status'))}", fg="red", err=True)


# The default run must stay quick (about a minute on 2 CPU cores). NeuMF at its paper settings (up
# to 300 epochs, validation every epoch) alone takes ~100 s here, near its FLOP floor, so the
# default run trains it lighter: 10 epochs at twice the learning rate, validated every 5 (NDCG@10
# 0.119 vs 0.123 at full settings, for a fifth of the work). The label says so in the leaderboard,
# and the config is recorded with the trial like any other.
DEFAULT_RUN_OVERRIDES: dict[str, Component] = {
    "neumf": Component("neumf", {"learning_rate": 0.002, "epochs": 10, "eval_every": 5},
                       label="neumf (light: 10 epochs)"),
}


def default_experiment(reg: Registry) -> Experiment:
    """Every built-in ranking model, one seed, default protocol, on the embedded dataset.

    Nothing is loaded here: the runner loads the dataset once and, for this experiment, leaves out
    the models whose requirements it does not meet (``unmet_requirements="skip"``), saying so.
    """
    dataset = Experiment().datasets[0]
    models = tuple(DEFAULT_RUN_OVERRIDES.get(name, Component(name)) for name in reg.names("model")
                   if reg.get("model", name).distribution == BUILTIN_DIST
                   and "ranking" in reg.model(name).tasks)
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
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="RECBENCH_DATA_DIR",
              help="Directory holding local copies of datasets (offline use), where downloads go "
                   "too [default: $RECBENCH_DATA_DIR].")
@click.option("--model", "models", multiple=True,
              help="Run only these models of the experiment (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True,
              help="Progress lines also show what each model reported (fit_info), and the "
                   "training loop's per-epoch validation lines (logger recbench.train).")
@click.pass_context
def run_command(ctx: click.Context, config: str | None, results_dir: str | None,
                device: str | None, data_dir: str | None, models: tuple[str, ...], fmt: str,
                quiet: bool, verbose: bool) -> None:
    """Run an experiment (TOML); without CONFIG, the default leaderboard on the embedded dataset.

    Progress goes to stderr: a bar on a terminal, else one line per finished trial. Exits 3 when
    some trials failed, after printing the leaderboard of the others.
    """
    reg = registry(ctx)
    experiment = load_experiment(config) if config else default_experiment(reg)
    if models:
        experiment = only_models(experiment, models)
    warn_plugin_errors(reg)
    enable_compilation_cache()
    options = RunOptions(Path(results_dir or Path("recbench-results") / experiment.name),
                         Path(data_dir) if data_dir else None, cache_dir(), device,
                         unmet_requirements="error" if config else "skip")
    if verbose and not quiet:
        _show_training_log()
    err = console(stderr=True)
    with _progress(err, quiet) as (progress, bar_shown):
        lines = None if quiet or bar_shown else _trial_line_printer(verbose)
        runner = Runner(experiment, reg, options, progress=progress, on_trial=lines)
        records = runner.run()
    for message in runner.skipped:
        click.echo(f"note: left out: {message}", err=True)
    for message in runner.hook_errors:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    _print_board(records, fmt, title=f"{experiment.name} ({experiment.protocol.task}, "
                                     f"split {experiment.protocol.split.name})")
    click.echo(f"results: {options.results_dir}", err=True)
    if any(r.get("status") not in ("ok", "unsupported") for r in records):
        ctx.exit(EXIT_TRIALS_FAILED)


TRAINING_LOGGER = "recbench.train"  # where the training loop reports each validation


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (not when the handler was made),
    so a redirected or captured stderr gets the lines too."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _show_training_log() -> None:
    """-v: per-epoch validation lines of the shared training loop, on stderr."""
    logger = logging.getLogger(TRAINING_LOGGER)
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("  %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@contextlib.contextmanager
def _progress(err: Any, quiet: bool) -> Iterator[tuple[Callable[[int, int, str], None], bool]]:
    """A rich bar when stderr is a terminal (and not quiet), else a no-op progress callback."""
    if quiet or not err.is_terminal:
        yield (lambda done, total, message: None), False
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("loading data", total=None)
        yield (lambda done, total, message: bar.update(
            task, completed=done, total=total or None, description=message)), True


def _trial_line_printer(verbose: bool) -> Callable[[TrialRecord, int, int], None]:
    """One line per finished trial: where, the key metric, the fit time (stderr, flushed)."""
    def show(record: TrialRecord, done: int, total: int) -> None:
        where = f"[{done}/{total}] {record['dataset']} / {record['model']} / {replicate(record)}"
        if record["status"] == "unsupported":
            click.echo(f"{where}: {record.get('reason', 'unsupported')}", err=True)
            return
        if record["status"] != "ok":
            click.echo(f"{where}: failed: {record.get('error', '')}".splitlines()[0], err=True)
            return
        metric, value = next(iter(record["metrics"].items()))
        line = f"{where}: {metric} {value:.4f}, fit {record['timings']['fit_s']:.2f} s"
        if verbose and record.get("fit_info"):
            line += " (" + ", ".join(f"{k} {v}" for k, v in record["fit_info"].items()) + ")"
        click.echo(line, err=True)
    return show


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


