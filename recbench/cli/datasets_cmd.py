"""`recbench datasets list | info NAME | download NAME`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.table import Table

from ..config import Component
from ..data import Dataset
from ..runner import open_dataset, resolve
from ..specs import LoadContext
from .common import cache_dir, console, registry


def distinct_pairs(ds: Dataset) -> int:
    """How many distinct (user, item) pairs the interactions hold (repeat purchases count once)."""
    x = ds.interactions
    return int(len(np.unique(x.user.astype(np.int64) * x.n_items + x.item)))


def describe(ds: Dataset) -> dict[str, Any]:
    """Sizes, density (distinct pairs / users x items), time span and feature columns."""
    x = ds.interactions
    pairs = distinct_pairs(ds)
    info: dict[str, Any] = {
        "users": x.n_users, "items": x.n_items, "interactions": len(x), "pairs": pairs,
        "density": pairs / max(1, x.n_users * x.n_items),
        "ratings": None if x.rating is None else sorted(float(v) for v in np.unique(x.rating))[:20],
        "checksum": ds.checksum,
    }
    if x.timestamp is not None and len(x):
        fmt = lambda t: time.strftime("%Y-%m-%d", time.gmtime(int(t)))  # noqa: E731
        info["time_span"] = [fmt(x.timestamp.min()), fmt(x.timestamp.max())]
    for kind, table in (("item_features", ds.item_features), ("user_features", ds.user_features)):
        if table is not None:
            info[kind] = list(table.columns)
    return info


def _component(name: str, options: tuple[str, ...]) -> Component:
    config = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            raise click.BadParameter(f"{opt!r} is not KEY=VALUE", param_hint="--option")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value  # a bare string such as a path
    return Component(name, config)


_options = click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
                        help="Dataset config value (JSON or a bare string), repeatable.")
_data_dir = click.option("--data-dir", type=click.Path(file_okay=False),
                         envvar="RECBENCH_DATA_DIR",
                         help="Directory holding local copies of datasets; downloads go there too "
                              "[default: $RECBENCH_DATA_DIR, else <cache dir>/downloads].")


@click.group("datasets")
def datasets_group() -> None:
    """List, describe and download datasets."""


@datasets_group.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Every registered dataset with its source and license."""
    reg = registry(ctx)
    table = Table(title="datasets")
    for col in ("name", "plugin", "license", "description"):
        table.add_column(col)
    for name in reg.names("dataset"):
        entry = reg.get("dataset", name)
        table.add_row(name, entry.distribution, entry.spec.card.license, entry.spec.card.description)
    console().print(table)


def _load(ctx: click.Context, name: str, options: tuple[str, ...], data_dir: str | None) -> tuple:
    reg = registry(ctx)
    resolved = resolve(reg.dataset, _component(name, options), f"dataset {name!r}")
    load_ctx = LoadContext(Path(data_dir) if data_dir else None, cache_dir())
    start = time.perf_counter()
    ds = open_dataset(resolved.spec, resolved.config, load_ctx)
    return resolved.spec, ds, time.perf_counter() - start


@datasets_group.command("info")
@click.argument("name")
@_options
@_data_dir
@click.pass_context
def info_command(ctx: click.Context, name: str, options: tuple[str, ...], data_dir: str | None) -> None:
    """Users, items, interactions, distinct pairs, density (pairs / users x items), time span,
    features, license and citation (JSON)."""
    spec, ds, seconds = _load(ctx, name, options, data_dir)
    card = spec.card
    out = {"name": name, **describe(ds), "source": card.source, "license": card.license,
           "citation": card.citation, "description": card.description, "load_s": round(seconds, 4)}
    click.echo(json.dumps(out, indent=2))


@datasets_group.command("download")
@click.argument("name")
@_options
@_data_dir
@click.pass_context
def download_command(ctx: click.Context, name: str, options: tuple[str, ...],
                     data_dir: str | None) -> None:
    """Fetch (verified by checksum) and parse a dataset into the cache."""
    _, ds, seconds = _load(ctx, name, options, data_dir)
    x = ds.interactions
    click.echo(f"{name}: {x.n_users} users, {x.n_items} items, {len(x)} interactions "
               f"ready in {seconds:.2f} s")
