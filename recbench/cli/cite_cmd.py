"""`recbench cite`: BibTeX for recbench and the datasets of a results directory, with provenance."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import RecbenchError
from ..report.cite import cite
from ..specs import DatasetCard
from .common import registry
from .report_cmd import read_store


@click.command("cite")
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@click.pass_context
def cite_command(ctx: click.Context, results_dir: str | None) -> None:
    """Print BibTeX for recbench and for every dataset used in RESULTS_DIR (from the dataset
    cards), then a provenance block (versions, configs, hardware, trial keys) as % comments.
    Without RESULTS_DIR: recbench's own entry."""
    reg = registry(ctx)

    def card_of(name: str) -> DatasetCard | None:
        try:
            return reg.dataset(name).card
        except RecbenchError:  # a dataset plugin no longer installed
            return None

    records: list = []
    if results_dir is not None:
        if not Path(results_dir).is_dir():
            raise RecbenchError(f"results directory {results_dir} does not exist")
        store, records = read_store(results_dir)
        for problem in store.unreadable:
            click.secho(f"skipped: unreadable record {problem}", fg="yellow", err=True)
    click.echo(cite(records, card_of), nl=False)
