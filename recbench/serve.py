"""Serve a stored trial without retraining: its saved model, rebuilt on its own data and split.

A trial record's ``identity`` names everything that made it (dataset and config, protocol, model
and config, seed, fold), so the data and the split are rebuilt exactly; the dataset's checksum
must still match the record's. The fitted model comes from the state saved with ``recbench run
--save-models`` through the model's ``restore``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from . import modelstate, tuning
from .config import Experiment, from_mapping
from .data import Dataset, Interactions, Split, UserBatch
from .errors import DataError, ModelError
from .evaluate import padded_lists
from .registry import Registry
from .runner import RunOptions, Runner, candidate_items, model_context, with_valid
from .store import ResultStore


@dataclass(frozen=True)
class RestoredTrial:
    record: dict[str, Any]
    dataset: Dataset
    split: Split
    fitted: Any
    history: Interactions  # what the model sees per user when scoring (the protocol's rule)
    known: Interactions  # the items masked per user (seen in training, and validation if masked)
    candidates: np.ndarray | None = None  # protocol.candidates as an item mask; None = all items


def restore_trial(results_dir: Path, key: str, registry: Registry, *, data_dir: Path | None,
                  cache_dir: Path) -> RestoredTrial:
    """Rebuild trial ``key`` of the store at ``results_dir`` with its saved fitted model."""
    store = ResultStore(results_dir)
    key = _full_key(store, key)
    record = store.get(key)
    data = store.model_state(key)  # checked first: no data is loaded for a trial without a model
    ident = record["identity"]
    protocol = dict(ident["protocol"])
    if "fold" in ident:
        protocol["folds"] = [ident["fold"]]
    experiment = from_mapping(Experiment, {
        "name": "restore", "seeds": [ident["seed"]], "protocol": protocol,
        "datasets": [{"name": ident["dataset"]["name"], "config": ident["dataset"]["config"]}],
        "models": [{"name": ident["model"]["name"], "config": ident["model"]["config"],
                    "search": ident["model"].get("search", {})}]},
        where=f"trial {key}")
    runner = Runner(experiment, registry, RunOptions(results_dir, data_dir, cache_dir))
    ds = runner.load_dataset(runner.plan_.datasets[0])
    if ds.checksum != ident["dataset"]["checksum"]:
        raise DataError(f"trial {key}: dataset {ds.name!r} has checksum {ds.checksum} now, but the "
                        f"trial was run on {ident['dataset']['checksum']}; the saved model does "
                        "not belong to this data")
    split = runner.make_split(ds, ident["seed"], ident.get("fold"))
    model = runner.plan_.models[0]
    config = model.config
    if "tuning" in record:  # the tested model: the chosen setting, on the data it was fitted on
        t = record["tuning"]
        config = tuning.tested_config(from_mapping(model.spec.config, t["chosen"],
                                                   where=f"trial {key}: tuning.chosen"), t)
        split = tuning.tested_split(split, runner.tuning_split(ds, split, ident["seed"]),
                                    t["refit"])
    built = model.spec.factory(config, model_context(ds, experiment.protocol))
    if not modelstate.restores_state(built):
        raise ModelError(f"trial {key}: model {model.name!r} has no restore(state) in this version")
    fitted = built.restore(modelstate.decode(data))
    p = experiment.protocol
    full = with_valid(split)
    return RestoredTrial(record, ds, split, fitted,
                         history=full if p.history == "train+valid" else split.train,
                         known=full if p.mask_valid_in_test else split.train,
                         candidates=candidate_items(split, p.candidates))


def _full_key(store: ResultStore, prefix: str) -> str:
    """A trial key from a unique prefix of it (as git takes commit prefixes)."""
    if store.has(prefix):
        return prefix
    keys = sorted(p.stem for p in store.trials.glob(f"{prefix}*.json")) if prefix else []
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise DataError(f"no stored trial {prefix!r} in {store.root}; `recbench leaderboard "
                        f"{store.root} --format json` lists the keys")
    raise DataError(f"trial key prefix {prefix!r} is ambiguous in {store.root}: "
                    f"{', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")


def user_index(ds: Dataset, user: str) -> int:
    """The internal index of a user given by its original id (as printed or typed)."""
    ids = np.asarray(ds.user_ids).astype(str)
    hit = np.flatnonzero(ids == str(user))
    if not len(hit):
        raise DataError(f"dataset {ds.name!r} has no user {user!r} (ids such as "
                        f"{', '.join(ids[:3])})")
    return int(hit[0])


def recommend(trial: RestoredTrial, user: int, k: int) -> list[dict[str, Any]]:
    """The user's top ``k`` items not seen in training: rank, item id, score, title where the
    dataset has one, and whether the item is in the user's test part."""
    ptr, items = trial.history.sequences()
    rows = np.array([user])
    history, lengths = padded_lists(ptr, items, rows, pad=trial.history.n_items,
                                    width=max(int(ptr[user + 1] - ptr[user]), 1))
    batch = UserBatch(jnp.asarray(rows, jnp.int32), jnp.asarray(history), jnp.asarray(lengths),
                      jnp.ones(1, bool), trial.history.n_items)
    scores = np.asarray(trial.fitted.score(batch))[0].astype(np.float64)
    known = trial.known.csr
    scores[known.indices[known.indptr[user]:known.indptr[user + 1]]] = -np.inf
    if trial.candidates is not None:  # protocol.candidates: rank only these (e.g. cold items)
        scores[~trial.candidates] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]  # ties: the lower item index first
    order = order[np.isfinite(scores[order])]
    test = set(trial.split.test.item[trial.split.test.user == user].tolist())
    titles = next((trial.dataset.item_info[c] for c in ("title", "text")
                   if c in trial.dataset.item_info), None)
    return [{"rank": r + 1, "item": str(trial.dataset.item_ids[i]), "score": float(scores[i]),
             **({"title": str(titles[i])} if titles is not None else {}),
             "in_test": int(i) in test} for r, i in enumerate(order)]
