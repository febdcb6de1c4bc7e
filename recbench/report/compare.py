"""The technology comparison: every model family on one dataset under several protocols at once.

:func:`grid` plans it: one experiment per protocol (top-K ranking; cold-start ranking on held-out
items; binary interaction prediction; rating prediction where the data has ratings). The default
is the *light grid*: :data:`LIGHT_GRID` names one built-in model per family for each protocol,
trained under the light settings of :mod:`recbench.light` (labels say ``light``), so that the
no-argument run finishes in about two minutes on 2 CPU cores; a family of the registry that the
grid names nowhere (a plugin's) gets an automatic pick, so a new family appears without changes
here. The automatic pick (also ``only``, a chosen list of models) takes one representative per
family among the models that serve the protocol's task and whose requirements the data meets: on
the cold-start protocol one that serves cold items if the family has one; then the fewest data
requirements; then the smallest declared training budget; then by name. ``all_models`` takes
every model. ``full`` keeps every model's own settings; otherwise models outside the light table
that train for epochs train for at most :data:`LIGHT_EPOCHS`, their labels saying so: the
comparison measures what each family costs and gives at a fixed small budget.

:func:`comparison` turns the report of those runs into one table: a row per model, each metric
column labelled with its protocol, costs from the ranking protocol; and :func:`by_family` keeps
each family's best model per column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

from ..config import Component, Experiment, Protocol
from ..data import Dataset
from ..light import LIGHT, light
from ..registry import Registry
from ..specs import FAMILIES, missing_requirements
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
COST_PROTOCOL = "ranking"  # the costs shown are those of this protocol's fit and evaluation
LIGHT_EPOCHS = 3  # the epoch cap of a model outside the light settings table (recbench.light)

# The default grid, by protocol: one built-in model per family that serves the protocol, under
# the light settings of recbench.light, chosen so that the no-argument run on online-retail stays
# near two minutes on 2 CPU cores, cold: compilation is most of it (10-15 s per neural model
# even at light sizes). The hybrid family is the factorisation machine in all three protocols;
# neural CF is NeuMF on the binary protocol (its full-ranking validation runs every user-item
# pair through the MLP); the sequential models are GRU4Rec (rnn) and SASRec (attention); on
# cold-start only models that score cold items (the rest are noted, not run).
LIGHT_GRID: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ranking": ("most-popular", "user-knn", "ease", "ials", "content-knn", "fm", "gru4rec",
                "sasrec"),
    "cold-start": ("category-popular", "content-knn", "fm"),
    "binary": ("most-popular", "neumf", "fm"),
    "rating": ("random", "user-knn", "item-knn", "biased-mf", "fm"),
})
# Families the light grid leaves out on purpose (not picked automatically), and why; noted on
# every run. `--model NAME` or `--all-models` brings them in.
LIGHT_GRID_LEAVES_OUT: Mapping[str, str] = MappingProxyType({
    "cnn": "caser compiles for longer than the whole two-minute budget allows",
    "lstm": "lstm is gru4rec's network with another cell and as costly to compile",
})


@dataclass(frozen=True)
class Planned:
    name: str  # the protocol's name in the comparison ("ranking", "cold-start", ...)
    experiment: Experiment


def training_budget(reg: Registry, name: str) -> int:
    """A model's default epochs (0 for models that do not train for epochs): the automatic pick
    takes the model of each family with the smallest."""
    fields = {f.name: f for f in dataclasses.fields(reg.model(name).config)}
    default = fields["epochs"].default if "epochs" in fields else 0
    return default if isinstance(default, int) else 0


def setting(reg: Registry, name: str, full: bool = False) -> Component:
    """``name`` as the comparison trains it: its light settings (:data:`recbench.light.LIGHT`);
    for a model without any, at most :data:`LIGHT_EPOCHS` epochs (validated once, at the end)
    when its config has an ``epochs`` field, the label saying so; ``full``: its own settings."""
    if full:
        return Component(name)
    if name in LIGHT:
        return light(name)
    fields = {f.name: f for f in dataclasses.fields(reg.model(name).config)}
    if "epochs" not in fields:
        return Component(name)
    n = min(LIGHT_EPOCHS, fields["epochs"].default)
    config = {"epochs": n, **({"eval_every": n} if "eval_every" in fields else {})}
    return Component(name, config, label=f"{name} ({n} epochs)")


def _usable(reg: Registry, name: str, task: str, ds: Dataset, notes: list[str]) -> bool:
    """Whether ``name`` serves ``task`` on ``ds``; a requirement ``ds`` lacks goes to ``notes``."""
    spec = reg.model(name)
    if task not in spec.tasks:
        return False
    if missing := missing_requirements(spec, ds):
        notes.append(f"{name}: needs {', '.join(missing)}, which {ds.name} does not have")
        return False
    return True


def pick_models(reg: Registry, task: str, ds: Dataset, all_models: bool, full: bool,
                only: tuple[str, ...] = (), cold: bool = False,
                families: frozenset[str] | None = None) -> tuple[list[Component], list[str]]:
    """The models of one protocol picked automatically (among ``only`` when given, of
    ``families`` when given) and notes on the families left without one. One per family unless
    ``all_models``: on ``cold``, one that serves cold items if the family has one; then the fewest
    data requirements; then the smallest declared training budget; then by name."""
    by_family: dict[str, list[str]] = {}
    notes: list[str] = []
    for name in sorted(only) if only else reg.usable("model"):
        family = reg.model(name).family
        if families is not None and family not in families:
            continue
        by_family.setdefault(family, [])
        if _usable(reg, name, task, ds, notes):
            by_family[family].append(name)
    if not all_models:
        def cost(n: str) -> tuple:
            spec = reg.model(n)
            return (cold and not spec.cold_items, len(spec.requires), training_budget(reg, n), n)
        by_family = {f: sorted(names, key=cost)[:1] for f, names in by_family.items()}
    chosen = [n for names in by_family.values() for n in names]
    notes += [f"family {f}: no model serves task {task!r} on {ds.name}"
              for f, names in by_family.items() if not names]
    return [setting(reg, n, full) for n in sorted(chosen)], notes


def light_grid(reg: Registry, name: str, task: str, ds: Dataset, full: bool
               ) -> tuple[list[Component], list[str]]:
    """The default models of protocol ``name``: :data:`LIGHT_GRID`'s that are registered and
    usable on ``ds``, plus an automatic pick for each family the grid names nowhere (a plugin's
    new family appears without changes here)."""
    notes: list[str] = []
    usable = reg.usable("model")
    named = [n for n in LIGHT_GRID.get(name, ()) if n in usable
             and _usable(reg, n, task, ds, notes)]
    covered = {reg.model(n).family for names in LIGHT_GRID.values() for n in names
               if n in usable}
    others = (frozenset(reg.model(n).family for n in usable) - covered
              - set(LIGHT_GRID_LEAVES_OUT))
    extra, why = pick_models(reg, task, ds, False, full, cold=PROTOCOLS[name].candidates == "cold",
                             families=others)
    return [setting(reg, n, full) for n in named] + extra, notes + why


def grid(reg: Registry, dataset: Component, ds: Dataset, seeds: tuple[int, ...] = (0,),
         protocols: tuple[str, ...] = tuple(PROTOCOLS), all_models: bool = False,
         full: bool = False, only: tuple[str, ...] = ()) -> tuple[list[Planned], list[str]]:
    """One experiment per protocol the data supports; the notes say what was left out. Without
    ``all_models`` or ``only``: the light grid (:func:`light_grid`)."""
    for name in only:
        reg.model(name)  # an unknown name fails here, with a did-you-mean
    planned, notes = [], []
    for name in protocols:
        protocol = PROTOCOLS[name]
        if protocol.task == "rating" and ds.interactions.rating is None:
            notes.append(f"protocol {name}: {ds.name} has no ratings, so no rating error")
            continue
        metrics = tuple(m for m in protocol.metrics if m in reg.names("metric"))
        if all_models or only:
            models, why = pick_models(reg, protocol.task, ds, all_models, full, only,
                                      cold=protocol.candidates == "cold")
        else:
            models, why = light_grid(reg, name, protocol.task, ds, full)
        notes += [f"protocol {name}: {n}" for n in why]
        if not models:
            continue
        experiment = Experiment(name=f"compare-{name}", datasets=(dataset,), models=tuple(models),
                                seeds=seeds, protocol=dataclasses.replace(protocol, metrics=metrics))
        planned.append(Planned(name, experiment))
    if not (all_models or only):
        present = {reg.model(n).family for n in reg.usable("model")}
        notes += [f"light grid: family {f} left out ({why}); --model or --all-models runs it"
                  for f, why in LIGHT_GRID_LEAVES_OUT.items() if f in present]
    return planned, notes


def _table_of(report: Report, protocol_id: str) -> ReportTable | None:
    return next((t for t in report.tables if t.protocol == protocol_id), None)


def family_order(family: str) -> tuple[int, str]:
    """Families in :data:`~recbench.specs.FAMILIES`' order (baselines first), plugins' after."""
    return (FAMILIES.index(family) if family in FAMILIES else len(FAMILIES), family)


def comparison(report: Report, protocols: Mapping[str, str]) -> pd.DataFrame:
    """A row per model: family, then every metric of every protocol as formatted text (best in
    bold with ``**``, † where significantly different from the best), then the costs: those of
    the ranking protocol, else of the first protocol the model ran under, named in the cell.
    ``protocols``: protocol name -> the report table's protocol id."""
    rows: dict[str, dict[str, Any]] = {}
    cost_from: dict[str, str] = {}
    ordered = sorted(protocols, key=lambda n: n != COST_PROTOCOL)  # the costs' protocol first
    for name in ordered:
        table = _table_of(report, protocols[name])
        if table is None:
            continue
        for i, label in enumerate(table.board["label"]):
            row = rows.setdefault(label, {"model": label, "family": table.board.at[i, "family"]})
            for metric in table.metrics:
                row[f"{metric} ({name})"] = cell(table, i, metric, bold=("**", "**"))
            if cost_from.setdefault(label, name) == name:
                where = "" if name == COST_PROTOCOL else f" ({name})"
                for col in COST_COLUMNS:
                    if col in table.board:
                        row[COST_COLUMNS[col]] = cell(table, i, col) + where
    if not rows:
        return pd.DataFrame(columns=["model", "family"])
    frame = pd.DataFrame(list(rows.values()))
    metric_columns = [f"{m} ({n})" for n in protocols for t in [_table_of(report, protocols[n])]
                      if t is not None for m in t.metrics]
    head = ["model", "family"] + metric_columns
    frame = frame[head + [c for c in frame.columns if c not in head]].fillna("-")
    order = sorted(range(len(frame)), key=lambda i: (family_order(frame.at[i, "family"]),
                                                     frame.at[i, "model"]))
    return frame.iloc[order].reset_index(drop=True)


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
    frame = pd.DataFrame(list(rows.values())).fillna("-")
    return frame.iloc[sorted(range(len(frame)), key=lambda i: family_order(
        frame.at[i, "family"]))].reset_index(drop=True)


def markdown(frame: pd.DataFrame) -> str:
    head = list(frame.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
