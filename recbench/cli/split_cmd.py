"""`recbench split export`: write an experiment's split as plain files for another framework."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_experiment
from ..errors import ConfigError
from ..runner import RunOptions, Runner
from ..splitfiles import export
from .common import cache_dir, registry


@click.group("split")
def split_group() -> None:
    """Splits as plain files (see also the `given` splitter)."""


@split_group.command("export")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for train.tsv, valid.tsv and test.tsv.")
@click.option("--seed", type=int, help="Which of the experiment's seeds [default: the first].")
@click.option("--dataset", "label", help="Which of the experiment's datasets [default: the first].")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="RECBENCH_DATA_DIR",
              help="Directory holding local copies of datasets; downloads go there too "
                   "[default: $RECBENCH_DATA_DIR].")
@click.pass_context
def export_command(ctx: click.Context, config: str, out: str, seed: int | None, label: str | None,
                   data_dir: str | None) -> None:
    """Write the split CONFIG's protocol makes (original ids, tab-separated)."""
    experiment = load_experiment(config)
    seed = experiment.seeds[0] if seed is None else seed
    runner = Runner(experiment, registry(ctx),
                    RunOptions(Path("."), Path(data_dir) if data_dir else None, cache_dir()))
    datasets = [d for d in runner.plan_.datasets if label in (None, d.label)]
    if not datasets:
        raise ConfigError(f"--dataset {label!r} is not in {config}; it has "
                          f"{', '.join(d.label for d in runner.plan_.datasets)}")
    ds = runner.load_dataset(datasets[0])
    split = runner.make_split(ds, seed)
    for path in export(ds, split, Path(out)):
        click.echo(path)
    click.echo(f"split fingerprint {split.fingerprint}", err=True)
