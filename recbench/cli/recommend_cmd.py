"""`recbench recommend RESULTS_DIR --trial KEY --user ID`: a stored trial's top-K for one user,
served from the model saved with `recbench run --save-models`, without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..serve import recommend, restore_trial, user_index
from .common import cache_dir, registry


@click.command("recommend")
@click.argument("results_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--trial", "key", required=True,
              help="The trial's key (a unique prefix is enough); `recbench leaderboard "
                   "RESULTS_DIR --format json` lists them.")
@click.option("--user", required=True, help="The user's id as the dataset has it.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="RECBENCH_DATA_DIR",
              help="Directory holding local copies of datasets [default: $RECBENCH_DATA_DIR].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def recommend_command(ctx: click.Context, results_dir: str, key: str, user: str, k: int,
                      data_dir: str | None, fmt: str) -> None:
    """Print the top-K unseen items of USER under a stored trial's saved model.

    The trial's data and split are rebuilt from its record (the dataset's checksum must match);
    items the protocol masks (training, and validation if masked) are left out. Items marked *
    are in the user's test part.
    """
    trial = restore_trial(Path(results_dir), key, registry(ctx),
                          data_dir=Path(data_dir) if data_dir else None, cache_dir=cache_dir())
    rows = recommend(trial, user_index(trial.dataset, user), k)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    r = trial.record
    click.echo(f"{r['model']} on {r['dataset']} (seed {r['seed']}), user {user}:")
    for row in rows:
        mark = "*" if row["in_test"] else " "
        title = f"  {row['title']}" if "title" in row else ""
        click.echo(f"{row['rank']:>3} {mark} {row['item']:<12} {row['score']:>10.4f}{title}")
