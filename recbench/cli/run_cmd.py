"""`recbench run` and `recbench leaderboard`."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from ..config import Component, Experiment, load_experiment
from ..errors import ConfigError
from ..light import light
from ..registry import Registry
from ..records import TrialRecord
from ..executors import ExecutorConfig, make_executor
from ..runner import RetryPolicy, RunOptions, Runner
from ..store import ResultStore
from .report_cmd import BOARD_FORMATS, print_report, report_of, show_skipped
from .common import (EXIT_TRIALS_FAILED, cache_dir, console, enable_compilation_cache, registry,
                     warn_plugin_errors)

FORMATS = BOARD_FORMATS


def replicate(record: TrialRecord) -> str:
    """``seed S``, or ``seed S fold F`` under protocol.folds."""
    return f"seed {record['seed']}" + (f" fold {record['fold']}" if "fold" in record else "")


def _print_board(records: list[dict], fmt: str, store: ResultStore, reg: Registry) -> None:
    report = report_of(records, store, reg)
    print_report(report, fmt)
    if any(k.startswith("log_loss") for r in records for k in r.get("metrics", {})):
        click.echo("reference: a constant prediction of 0.5 has log loss ln 2 = 0.6931; `random` "
                   "predicts the training positive rate, the best constant", err=True)
    show_skipped(report, store)


# The default leaderboard is a quick tour of the model families on the embedded dataset: it must
# finish in about a minute on 2 CPU cores, cold (compilation included). So it names its models
# instead of taking every built-in one, and trains the gradient models lighter than their full
# settings (recbench.light, shared with `recbench compare`); their labels say so, and each config
# is recorded with its trial like any other. The full-settings tables are the experiments under
# results/. NeuMF is left out: full-ranking scoring through its MLP costs ~4 s per evaluation
# here at its own size, and it ranks below BPR on this data.
# Measured on online-retail (precision@10, full settings -> light): BPR 0.0583 (98 epochs, 22 s)
# -> 0.0562 (lr 0.002, 50 epochs, validated every 5); iALS 0.0799 (15 epochs) -> 0.0792 (8).
DEFAULT_MODELS: tuple[Component, ...] = (
    Component("random"),
    Component("most-popular"),
    Component("user-knn"),
    Component("item-knn"),
    Component("ease"),
    Component("content-knn"),
    light("ials"),
    light("bpr"),
)


def default_experiment(reg: Registry) -> Experiment:
    """The default tour (:data:`DEFAULT_MODELS`), one seed, default protocol, embedded dataset.

    Nothing is loaded here: the runner loads the dataset once and, for this experiment, leaves out
    the models whose requirements it does not meet (``unmet_requirements="skip"``), saying so.
    """
    dataset = Experiment().datasets[0]
    missing = [m.name for m in DEFAULT_MODELS if m.name not in reg.names("model")]
    if missing:
        raise ConfigError(f"the default experiment needs the built-in models {missing}; "
                          "reinstall recbench (`recbench plugins` shows load errors)")
    return Experiment(name="default", datasets=(dataset,), models=DEFAULT_MODELS)


def default_tour_note(reg: Registry) -> str:
    """What the default experiment leaves out, printed with its leaderboard (never silently)."""
    names = [m.name for m in DEFAULT_MODELS]
    rest = [n for n in reg.names("model") if n not in names]
    return (f"note: the default experiment is a tour of {len(names)} of the "
            f"{len(names) + len(rest)} registered models, gradient ones under light settings "
            f"(their labels say so); not in it: {', '.join(rest) or 'none'}. `recbench compare "
            "--all-models` runs every model; the full-settings tables are the experiments under "
            "results/")


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
@click.option("--save-models", is_flag=True,
              help="Save each trial's fitted model beside its record (models/), for `recbench "
                   "recommend`; applies to the trials this run trains, not to stored ones.")
@click.option("--executor", type=click.Choice(["serial", "processes", "dask"]), default="serial",
              show_default=True,
              help="Where trials run: this process, a pool of local processes, or Dask "
                   "distributed (a local cluster on 127.0.0.1, or --scheduler).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Worker processes [default: cores / --threads-per-worker; with --scheduler, "
                   "the cluster's].")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads of each worker (JAX/XLA and BLAS), so workers do not "
                   "oversubscribe the cores.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="--executor dask: join the Dask cluster of this scheduler.")
@click.option("--memory-limit", metavar="SIZE",
              help="--executor dask without --scheduler: memory of each local worker (\"4GB\"); "
                   "a trial past it is retried, then stored as failed [default: RAM / workers].")
@click.option("--retries", type=click.IntRange(min=1, max=100), default=3, show_default=True,
              help="Attempts of a trial whose worker process dies (killed, out of memory) "
                   "before it is stored as failed; attempt n waits 2^(n-2) s.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True,
              help="Progress lines also show what each model reported (fit_info), and the "
                   "training loop's per-epoch validation lines (logger recbench.train).")
@click.pass_context
def run_command(ctx: click.Context, config: str | None, results_dir: str | None,
                device: str | None, data_dir: str | None, models: tuple[str, ...], fmt: str,
                save_models: bool, executor: str, workers: int | None, threads_per_worker: int,
                scheduler: str | None, memory_limit: str | None, retries: int, quiet: bool,
                verbose: bool) -> None:
    """Run an experiment (TOML); without CONFIG, the default leaderboard on the embedded dataset.

    Progress goes to stderr: a bar on a terminal (not under CI=true), else one line per finished
    trial; each trial's output is kept in <results>/logs/<key>.log. Exits 3 when some trials
    failed, after printing the leaderboard of the others. The leaderboard uses the default
    statistics; `recbench leaderboard RESULTS` prints it again with other ones (--test,
    --correction, --alpha, --interval).
    """
    reg = registry(ctx)
    pool = make_executor(ExecutorConfig(executor, workers, threads_per_worker, scheduler,
                                        memory_limit))
    experiment = load_experiment(config) if config else default_experiment(reg)
    if models:
        experiment = only_models(experiment, models)
    warn_plugin_errors(reg)
    enable_compilation_cache()
    options = RunOptions(Path(results_dir or Path("recbench-results") / experiment.name),
                         Path(data_dir) if data_dir else None, cache_dir(), device,
                         unmet_requirements="error" if config else "skip",
                         save_models=save_models, retry=RetryPolicy(retries))
    if verbose and not quiet:
        _show_training_log()
    err = console(stderr=True)
    with _progress(err, quiet) as (progress, bar):
        lines = bar if bar is not None or quiet else _trial_line_printer(verbose)
        runner = Runner(experiment, reg, options, progress=progress, on_trial=lines)
        records = runner.run(pool)
    unsaved = [r for r in records if r.get("status") == "ok" and "file" not in
               r.get("saved_model", {})]
    if save_models and unsaved:
        click.echo(f"note: {len(unsaved)} trial(s) have no saved model (stored by an earlier run "
                   "without --save-models, or a model that cannot be saved: see each record's "
                   "saved_model)", err=True)
    for message in runner.skipped:
        click.echo(f"note: left out: {message}", err=True)
    if not config:
        click.echo(default_tour_note(reg), err=True)
    for message in runner.hook_errors:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    _print_board(records, fmt, runner.store, reg)
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
def _progress(err: Any, quiet: bool) -> Iterator[tuple[Callable[[int, int, str], None],
                                                       Callable[[TrialRecord, int, int], None] | None]]:
    """A rich bar (done / total, failed, what runs, ETA) when stderr is a terminal and not under
    CI=true (and not quiet): (progress callback, per-trial callback); else a no-op and None."""
    if quiet or not err.is_terminal or os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        yield (lambda done, total, message: None), None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("loading data", total=None, failed=0)
        failed = [0]

        def trial(record: TrialRecord, done: int, total: int) -> None:
            failed[0] += record["status"] not in ("ok", "unsupported")
            bar.update(task, completed=done, total=total, failed=failed[0])

        yield (lambda done, total, message: bar.update(
            task, completed=done, total=total or None, description=message)), trial


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
