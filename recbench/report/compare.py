"""The technology comparison: every model family on one dataset under several protocols at once.

:func:`grid` plans it: one experiment per protocol (top-K ranking; cold-start ranking on held-out
items; binary interaction prediction; rating prediction where the data has ratings), each over
the models the registry holds *now*, so a new family appears without changes here. The default
grid takes one representative per family (among the models that serve the protocol's task and
whose requirements the data meets: on the cold-start protocol one that serves cold items if the
family has one; then the fewest data requirements; then the smallest declared training budget, no
``epochs`` field first, then the fewest default epochs; then by name); ``all_models`` takes every
model. Models trained for epochs (any config with an ``epochs`` field) train for at most ``epochs`` (default 3, validated once) in the default grid, their labels
saying so: the comparison measures what each family costs and gives at a fixed small budget;
``epochs=0`` keeps every model's own settings.

:func:`comparison` turns the report of those runs into one table: a row per model, each metric
column labelled with its protocol, costs from the ranking protocol; and :func:`by_family` keeps
each family's best model per column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import Component, Experiment, Protocol
from ..data import Dataset
from ..registry import Registry
from ..specs import missing_requirements
from .export import cell
from .leaderboard import COST_COLUMNS
from .tables import Report, ReportTable

K = 10
RANKING_METRICS = ("precision", "recall", "ndcg")
# Cold-start: 10% of items held out with all their interactions (5% more for validation, so that
# early-stopping models stop instead of training their full epoch budget).
COLD_SPLIT = Component("cold-items", {"test_item_fraction": 0.1, "valid_item_fraction": 0.05})
PROTOCOLS: dict[str, Protocol] = {
    "ranking": Protocol(task="ranking", metrics=RANKING_METRICS, ks=(K,)),
    # Cold items ranked among themselves; a model that cannot serve cold items is noted, not run.
    "cold-start": Protocol(task="ranking", split=COLD_SPLIT, metrics=RANKING_METRICS, ks=(K,),
                           candidates="cold"),
    "binary": Protocol(task="binary", metrics=("accuracy", "roc_auc")),
    "rating": Protocol(task="rating", metrics=("mse", "rmse")),
}
LIGHT_EPOCHS = 3  # the default grid's training budget for models that train for epochs
COST_PROTOCOL = "ranking"  # the costs shown are those of this protocol's fit and evaluation


@dataclass(frozen=True)
class Planned:
    name: str  # the protocol's name in the comparison ("ranking", "cold-start", ...)
    experiment: Experiment


def training_budget(reg: Registry, name: str) -> int:
    """A model's default epochs (0 for models that do not train for epochs): the default grid
    takes the model of each family with the smallest."""
    fields = {f.name: f for f in dataclasses.fields(reg.model(name).config)}
    default = fields["epochs"].default if "epochs" in fields else 0
    return default if isinstance(default, int) else 0


def light(reg: Registry, name: str, epochs: int) -> Component:
    """``name`` with at most ``epochs`` training epochs (validated once, at the end) when its
    config has an ``epochs`` field, the label saying so; else its defaults. ``epochs`` 0: the
    model's own settings."""
    fields = {f.name: f for f in dataclasses.fields(reg.model(name).config)}
    if not epochs or "epochs" not in fields:
        return Component(name)
    n = min(epochs, fields["epochs"].default)
    config = {"epochs": n, **({"eval_every": n} if "eval_every" in fields else {})}
    return Component(name, config, label=f"{name} ({n} epochs)")


def pick_models(reg: Registry, task: str, ds: Dataset, all_models: bool, epochs: int,
                only: tuple[str, ...] = (), cold: bool = False
                ) -> tuple[list[Component], list[str]]:
    """The models of one protocol (among ``only`` when given) and notes on the families left
    without one; ``cold``: a family's representative is one that serves cold items if it has
    one."""
    by_family: dict[str, list[str]] = {}
    notes = []
    for name in sorted(only) if only else reg.names("model"):
        spec = reg.model(name)
        by_family.setdefault(spec.family, [])
        if task not in spec.tasks:
            continue
        if missing := missing_requirements(spec, ds):
            notes.append(f"{name}: needs {', '.join(missing)}, which {ds.name} does not have")
            continue
        by_family[spec.family].append(name)
    if not all_models:  # the cheapest by declared training budget, then by name
        def cost(n: str) -> tuple:
            spec = reg.model(n)
            return (cold and not spec.cold_items, len(spec.requires), training_budget(reg, n), n)
        by_family = {f: sorted(names, key=cost)[:1] for f, names in by_family.items()}
    chosen = [n for names in by_family.values() for n in names]
    notes += [f"family {f}: no model serves task {task!r} on {ds.name}"
              for f, names in by_family.items() if not names]
    return [light(reg, n, epochs) for n in sorted(chosen)], notes


def grid(reg: Registry, dataset: Component, ds: Dataset, seeds: tuple[int, ...] = (0,),
         protocols: tuple[str, ...] = tuple(PROTOCOLS), all_models: bool = False,
         epochs: int = LIGHT_EPOCHS, only: tuple[str, ...] = ()
         ) -> tuple[list[Planned], list[str]]:
    """One experiment per protocol the data supports; the notes say what was left out."""
    for name in only:
        reg.model(name)  # an unknown name fails here, with a did-you-mean
    planned, notes = [], []
    for name in protocols:
        protocol = PROTOCOLS[name]
        if protocol.task == "rating" and ds.interactions.rating is None:
            notes.append(f"protocol {name}: {ds.name} has no ratings, so no rating error")
            continue
        metrics = tuple(m for m in protocol.metrics if m in reg.names("metric"))
        models, why = pick_models(reg, protocol.task, ds, all_models, epochs, only,
                                  cold=protocol.candidates == "cold")
        notes += [f"protocol {name}: {n}" for n in why]
        if not models:
            continue
        experiment = Experiment(name=f"compare-{name}", datasets=(dataset,), models=tuple(models),
                                seeds=seeds, protocol=dataclasses.replace(protocol, metrics=metrics))
        planned.append(Planned(name, experiment))
    return planned, notes


def _table_of(report: Report, protocol_id: str) -> ReportTable | None:
    return next((t for t in report.tables if t.protocol == protocol_id), None)


def comparison(report: Report, protocols: Mapping[str, str]) -> pd.DataFrame:
    """A row per model: family, then every metric of every protocol as formatted text (best in
    bold with ``**``, † where significantly different from the best), then the ranking costs.
    ``protocols``: protocol name -> the report table's protocol id."""
    rows: dict[str, dict[str, Any]] = {}
    for name, pid in protocols.items():
        table = _table_of(report, pid)
        if table is None:
            continue
        for i, label in enumerate(table.board["label"]):
            row = rows.setdefault(label, {"model": label, "family": table.board.at[i, "family"]})
            for metric in table.metrics:
                row[f"{metric} ({name})"] = cell(table, i, metric, bold=("**", "**"))
            if name == COST_PROTOCOL:
                for col in COST_COLUMNS:
                    if col in table.board:
                        row[COST_COLUMNS[col]] = cell(table, i, col)
    frame = pd.DataFrame(list(rows.values())).fillna("-")
    return frame.sort_values(["family", "model"], kind="stable", ignore_index=True)


def by_family(report: Report, protocols: Mapping[str, str]) -> pd.DataFrame:
    """A row per family: for each protocol's metric, the family's best value and its model."""
    rows: dict[str, dict[str, Any]] = {}
    for name, pid in protocols.items():
        table = _table_of(report, pid)
        if table is None:
            continue
        board = table.board
        for family, group in board.groupby("family", sort=True):
            row = rows.setdefault(family, {"family": family})
            for metric in table.metrics:
                higher = table.directions.get(metric, True)
                best = group[metric].idxmax() if higher else group[metric].idxmin()
                row[f"{metric} ({name})"] = f"{board.at[best, metric]:.4f} ({board.at[best, 'label']})"
    return pd.DataFrame(list(rows.values())).fillna("-")


def markdown(frame: pd.DataFrame) -> str:
    head = list(frame.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
