"""`recbench plugins`: every plugin, what it contributed, and what failed to load."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table

from .common import console as make_console, registry


@click.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json",
              show_default=True)
@click.pass_context
def plugins_command(ctx: click.Context, fmt: str) -> None:
    """List plugins: distribution, version, hooks, contributed names and load errors."""
    reg = registry(ctx)
    for kind in reg.entries:  # builds every deferred spec, so that load errors show
        reg.usable(kind)
    infos = [dataclasses.asdict(p) for p in reg.host.plugins]
    clashes = list(reg.clashes.values())
    if fmt == "json":
        click.echo(json.dumps({"plugins": infos, "name_clashes": clashes}, indent=2))
        return
    table = Table(title="recbench plugins")
    for col in ("plugin", "distribution", "version", "hooks", "contributes", "error"):
        table.add_column(col)
    for p in infos:
        contributes = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["contributes"].items())
        table.add_row(p["name"], p["distribution"], p["version"], ", ".join(p["hooks"]),
                      contributes, p["error"] or "")
    console = make_console()
    console.print(table)
    for message in clashes:
        console.print(f"[yellow]{message}[/yellow]")
