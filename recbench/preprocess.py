"""Preprocessing filters on a :class:`~recbench.data.Dataset`: dedup, implicit threshold, k-core.

Every function is pure: it returns a new Dataset and leaves its input untouched. Row order of the
surviving interactions is kept, so later steps (and stable tie-breaking in splitters) see the file
order. :func:`apply` runs the steps of a :class:`~recbench.config.Preprocess` config in the order
dedup -> implicit threshold -> k-core, re-indexes users/items to dense ids and records what it did
in ``metadata["preprocess"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import Preprocess, to_dict
from .data import Dataset, Interactions
from .errors import ConfigError, DataError

DEDUP_POLICIES: tuple[str, ...] = ("none", "first", "last")


def _with_rows(ds: Dataset, rows: np.ndarray) -> Dataset:
    """``ds`` restricted to interaction ``rows``, in the same id space (ids are compacted later)."""
    return ds.replace(interactions=ds.interactions.subset(rows), metadata=dict(ds.metadata))


def dedup(ds: Dataset, policy: str) -> Dataset:
    """Keep one interaction per (user, item) pair.

    ``"first"`` keeps the earliest by timestamp, ``"last"`` the latest; equal timestamps (or no
    timestamps at all) fall back to row order, so ``"last"`` keeps the last such row in the file.
    ``"none"`` returns the dataset unchanged. Surviving rows keep their original order.
    """
    if policy not in DEDUP_POLICIES:
        raise ConfigError(f"dedup policy must be one of {', '.join(map(repr, DEDUP_POLICIES))}, "
                          f"got {policy!r}")
    x = ds.interactions
    if policy == "none" or len(x) == 0:
        return ds
    pair = x.user.astype(np.int64) * x.n_items + x.item
    # lexsort is stable: within a pair, rows sort by timestamp and then by row index.
    order = np.lexsort((pair,) if x.timestamp is None else (x.timestamp, pair))
    sorted_pair = pair[order]
    boundary = np.flatnonzero(np.diff(sorted_pair)) + 1
    if policy == "first":
        pick = np.concatenate(([0], boundary))
    else:
        pick = np.concatenate((boundary - 1, [len(order) - 1]))
    return _with_rows(ds, np.sort(order[pick]))


def implicit(ds: Dataset, threshold: float) -> Dataset:
    """Keep interactions with ``rating >= threshold``; the rating column is kept as it was."""
    x = ds.interactions
    if x.rating is None:
        raise DataError(f"dataset {ds.name!r} has no ratings, so implicit_threshold={threshold} "
                        "cannot apply; remove implicit_threshold from the preprocess config")
    return _with_rows(ds, np.flatnonzero(x.rating >= threshold))


def compact(ds: Dataset) -> Dataset:
    """Drop users and items without interactions and re-index both to dense ``0..n-1`` ids.

    Original ids stay in ``user_ids``/``item_ids``; feature tables are subset to the kept rows.
    Relative id order is preserved, so ids sorted before stay sorted.
    """
    x = ds.interactions
    keep_users = np.flatnonzero(x.user_counts > 0)
    keep_items = np.flatnonzero(x.item_counts > 0)
    if len(keep_users) == x.n_users and len(keep_items) == x.n_items:
        return ds
    # new_id[old] = rank of old among the kept ids (only read at kept ids).
    new_user = np.cumsum(x.user_counts > 0) - 1
    new_item = np.cumsum(x.item_counts > 0) - 1
    y = x.with_ids(new_user[x.user], new_item[x.item], len(keep_users), len(keep_items))
    take = lambda t, rows: None if t is None else t.take(rows)  # noqa: E731
    return ds.replace(interactions=y, user_ids=ds.user_ids[keep_users],
                      item_ids=ds.item_ids[keep_items],
                      user_features=take(ds.user_features, keep_users),
                      item_features=take(ds.item_features, keep_items),
                      user_info={k: v[keep_users] for k, v in ds.user_info.items()},
                      item_info={k: v[keep_items] for k, v in ds.item_info.items()},
                      metadata=dict(ds.metadata))


def _core_mask(x: Interactions, user_core: int, item_core: int) -> np.ndarray:
    """Rows of the maximal subgraph where every user has >= user_core and every item >= item_core.

    Removing a user or item that violates its bound can never drop a row of any satisfying subgraph,
    so repeating the removal until nothing changes converges to the unique maximal one.
    """
    alive = np.ones(len(x), dtype=bool)
    while True:
        u, i = x.user[alive], x.item[alive]
        ok_user = np.bincount(u, minlength=x.n_users) >= user_core
        ok_item = np.bincount(i, minlength=x.n_items) >= item_core
        keep = ok_user[u] & ok_item[i]
        if keep.all():
            return alive
        alive[np.flatnonzero(alive)[~keep]] = False


def k_core(ds: Dataset, user_core: int, item_core: int) -> Dataset:
    """Iteratively drop users with < ``user_core`` and items with < ``item_core`` interactions.

    Counts are of interaction rows (run :func:`dedup` first to count distinct pairs). The result is
    the maximal subgraph with the core property, re-indexed by :func:`compact`.
    """
    if user_core < 0 or item_core < 0:
        raise ConfigError(f"k-core sizes must be >= 0, got user_core={user_core}, "
                          f"item_core={item_core}")
    x = ds.interactions
    if user_core <= 1 and item_core <= 1:
        return compact(ds)  # every present user/item already has >= 1 interaction
    return compact(_with_rows(ds, np.flatnonzero(_core_mask(x, user_core, item_core))))


def _summary(step: str, ds: Dataset, **extra: Any) -> dict[str, Any]:
    x = ds.interactions
    return {"step": step, **extra, "interactions": len(x),
            "users": int(np.count_nonzero(x.user_counts)),
            "items": int(np.count_nonzero(x.item_counts))}


def _ensure_nonempty(ds: Dataset, step: str, advice: str) -> None:
    if len(ds.interactions) == 0:
        raise DataError(f"preprocessing dataset {ds.name!r}: {step} left no interactions; {advice}")


def apply(ds: Dataset, cfg: Preprocess) -> Dataset:
    """Dedup -> implicit threshold -> k-core, then compact ids; record each step in the metadata.

    ``metadata["preprocess"]`` holds the config and, per step, the interactions, users and items
    left. Raises :class:`DataError` naming the step that emptied the dataset.
    """
    _ensure_nonempty(ds, "the input", "check the dataset source")
    steps = [_summary("input", ds)]
    ds = dedup(ds, cfg.dedup)
    steps.append(_summary("dedup", ds, policy=cfg.dedup))
    if cfg.implicit_threshold is not None:
        before, ds = ds, implicit(ds, cfg.implicit_threshold)  # raises if there are no ratings
        _ensure_nonempty(ds, f"the implicit threshold (rating >= {cfg.implicit_threshold})",
                         f"the highest rating is {float(before.interactions.rating.max()):g}; "
                         "lower implicit_threshold")
        steps.append(_summary("implicit", ds, threshold=cfg.implicit_threshold))
    ds = k_core(ds, cfg.user_core, cfg.item_core)
    _ensure_nonempty(ds, f"k-core (user_core={cfg.user_core}, item_core={cfg.item_core})",
                     "lower user_core/item_core")
    steps.append(_summary("k-core", ds, user_core=cfg.user_core, item_core=cfg.item_core))
    record = {"config": to_dict(cfg), "steps": steps}
    return ds.replace(metadata={**ds.metadata, "preprocess": record})
