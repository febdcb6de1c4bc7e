"""The built-in split protocols: ``fn(interactions, config, rng) -> Split``.

Shared rules (determinism, id space, protocol record, empty test part) and RecBole's part-size
rule are in :mod:`._parts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from recbench.api import DataError, Interactions, Split, SplitterSpec, check, to_dict

from ._parts import (
    TEST,
    TRAIN,
    VALID,
    label_by_rank,
    make_split,
    random_partition,
    random_rank,
    require_timestamps,
    part_sizes,
)


# ---------------------------------------------------------------- random per-user ratio


@dataclass(frozen=True)
class RatioConfig:
    """Parts (train, valid, test) or (train, test); they must sum to 1."""

    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)

    def __post_init__(self) -> None:
        r = tuple(self.ratios)
        check(len(r) in (2, 3), f"ratios must have 2 parts (train, test) or 3 (train, valid, "
                                f"test), got {len(r)}: {r}")
        check(all(v > 0 for v in r), f"every ratio must be in (0, 1], got {r}")
        check(abs(sum(r) - 1.0) <= 1e-6, f"ratios must sum to 1, got {sum(r):g} for {r}")


def ratio(x: Interactions, cfg: RatioConfig, rng: np.random.Generator) -> Split:
    """Random per-user ratio split: each user's rows are shuffled and cut by :func:`part_sizes`.

    Sizes per user of n rows (RecBole's rule): valid = floor(r_valid * n), test = floor(r_test * n),
    train = the rest; then test, and after it valid, take one row from train when r * n lies in
    (0, 1) and train still has more than one row. Users with one interaction keep it in train.
    Two ratios give no validation set.
    """
    sizes = part_sizes(x.user_counts, cfg.ratios)
    codes = (TRAIN, VALID, TEST) if len(cfg.ratios) == 3 else (TRAIN, TEST)
    labels = label_by_rank(random_rank(x, rng), x.user, sizes, codes)
    return make_split(x, labels, "ratio", cfg, with_valid=len(cfg.ratios) == 3)


# ---------------------------------------------------------------- leave-last-out


@dataclass(frozen=True)
class LeaveLastOutConfig:
    valid: bool = True  # hold out the second-last interaction as validation
    order: Literal["time", "row"] = "time"  # "row": file order stands in for time

    def __post_init__(self) -> None:
        check(self.order in ("time", "row"), f"order must be 'time' or 'row', got {self.order!r}")


def leave_last_out(x: Interactions, cfg: LeaveLastOutConfig, rng: np.random.Generator) -> Split:
    """Each user's last interaction is test, the second-last valid (if ``cfg.valid``).

    "Last" is by timestamp, equal timestamps broken by row order (the later row counts as later);
    with ``order="row"`` by row order alone. At least one interaction per user stays in train (as
    RecBole's leave-one-out): a user with 1 row is train only, with 2 rows gets train + test.
    ``rng`` is unused: the split is deterministic.
    """
    if cfg.order == "time":
        require_timestamps(x, "leave-last-out", 'set order = "row" to use file order instead')
        order = x.order  # stable sort by (user, timestamp)
    else:
        order = np.argsort(x.user, kind="stable")
    counts = x.user_counts
    ends = np.cumsum(counts)
    from_end = np.empty(len(x), dtype=np.int64)
    from_end[order] = ends[x.user[order]] - 1 - np.arange(len(x))  # 0 = the user's last row
    held = np.minimum(2 if cfg.valid else 1, np.maximum(counts - 1, 0))[x.user]
    labels = np.full(len(x), TRAIN, dtype=np.int8)
    labels[(from_end == 0) & (held >= 1)] = TEST
    labels[(from_end == 1) & (held >= 2)] = VALID
    return make_split(x, labels, "leave-last-out", cfg, with_valid=cfg.valid)


# ---------------------------------------------------------------- global temporal


@dataclass(frozen=True)
class TemporalConfig:
    test_fraction: float = 0.1
    valid_fraction: float = 0.1

    def __post_init__(self) -> None:
        check(0 < self.test_fraction < 1,
              f"test_fraction must be in (0, 1), got {self.test_fraction}")
        check(0 <= self.valid_fraction < 1,
              f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        check(self.test_fraction + self.valid_fraction < 1,
              f"test_fraction + valid_fraction must be < 1, got "
              f"{self.test_fraction + self.valid_fraction:g}")


def temporal(x: Interactions, cfg: TemporalConfig, rng: np.random.Generator) -> Split:
    """One global cut in time: the latest interactions are test, the ones before them valid.

    Target sizes come from :func:`part_sizes` over all N rows with ratios (1 - valid - test, valid,
    test), taken in (timestamp, row) order. A timestamp that straddles a cut goes wholly to the
    earlier part, so every test timestamp is strictly greater than every train/valid timestamp (the
    later parts can be smaller than their share when timestamps tie). ``rng`` is unused.
    """
    require_timestamps(x, "temporal", "use the ratio or kfold splitter instead")
    with_valid = cfg.valid_fraction > 0
    parts = (1 - cfg.test_fraction - cfg.valid_fraction, cfg.valid_fraction, cfg.test_fraction)
    sizes = part_sizes(np.array([len(x)]), parts if with_valid else (parts[0], parts[2]))[0]
    ts = x.timestamp
    ts_sorted = np.sort(ts, kind="stable")
    cuts = np.cumsum(sizes)[:-1]  # rows before each cut, in time order
    last_before = [ts_sorted[c - 1] if c > 0 else np.iinfo(np.int64).min for c in cuts]
    part = np.searchsorted(np.asarray(last_before, dtype=np.int64), ts, side="left")
    codes = (TRAIN, VALID, TEST) if with_valid else (TRAIN, TEST)
    labels = np.asarray(codes, dtype=np.int8)[part]
    if with_valid and not (labels == VALID).any():
        raise DataError(f"splitter 'temporal' ({to_dict(cfg)}): the validation part is empty "
                        "because timestamps tie across the cut; raise valid_fraction")
    return make_split(x, labels, "temporal", cfg, with_valid=with_valid)


# ---------------------------------------------------------------- k-fold


@dataclass(frozen=True)
class KFoldConfig:
    k: int = 5
    fold: int = 0  # which fold is the test set
    by: Literal["interactions", "users"] = "interactions"
    test_ratio: float = 0.2  # by="users" only: share of each test user's rows held out

    def __post_init__(self) -> None:
        check(self.k >= 2, f"k must be >= 2, got {self.k}")
        check(0 <= self.fold < self.k, f"fold must be in [0, {self.k - 1}] for k={self.k}, "
                                       f"got {self.fold}")
        check(self.by in ("interactions", "users"),
              f"by must be 'interactions' or 'users', got {self.by!r}")
        check(0 < self.test_ratio < 1, f"test_ratio must be in (0, 1), got {self.test_ratio}")


def kfold(x: Interactions, cfg: KFoldConfig, rng: np.random.Generator) -> Split:
    """Fold ``cfg.fold`` of a random k-fold partition is test; everything else is train. No valid.

    ``by="interactions"``: all rows are partitioned into k folds (sizes differ by at most one).
    ``by="users"``: users with interactions are partitioned into k folds; each user of the test fold
    holds out a random ``test_ratio`` share of their rows as test (sized by :func:`part_sizes` with
    ratios (1 - test_ratio, test_ratio); a user with one row keeps it in train), and the rest of
    their rows, with every row of the other users, is train.

    The partition depends only on ``rng``'s state, not on ``fold``: the k folds are disjoint and
    cover the data when each is split with an identically seeded generator.
    """
    if cfg.by == "interactions":
        test = random_partition(len(x), cfg.k, rng) == cfg.fold
    else:
        users = np.flatnonzero(x.user_counts > 0)
        test_user = np.zeros(x.n_users, dtype=bool)
        test_user[users[random_partition(len(users), cfg.k, rng) == cfg.fold]] = True
        sizes = part_sizes(x.user_counts, (1 - cfg.test_ratio, cfg.test_ratio))
        held = label_by_rank(random_rank(x, rng), x.user, sizes, (TRAIN, TEST)) == TEST
        test = held & test_user[x.user]
    labels = np.where(test, TEST, TRAIN).astype(np.int8)
    return make_split(x, labels, "kfold", cfg, with_valid=False)


# ---------------------------------------------------------------- cold-start items


@dataclass(frozen=True)
class ColdItemsConfig:
    test_item_fraction: float = 0.1
    valid_item_fraction: float = 0.0

    def __post_init__(self) -> None:
        check(0 < self.test_item_fraction < 1,
              f"test_item_fraction must be in (0, 1), got {self.test_item_fraction}")
        check(0 <= self.valid_item_fraction < 1,
              f"valid_item_fraction must be in [0, 1), got {self.valid_item_fraction}")
        check(self.test_item_fraction + self.valid_item_fraction < 1,
              f"test_item_fraction + valid_item_fraction must be < 1, got "
              f"{self.test_item_fraction + self.valid_item_fraction:g}")


def cold_items(x: Interactions, cfg: ColdItemsConfig, rng: np.random.Generator) -> Split:
    """A random subset of items is held out: all their interactions are test (or valid).

    Among the m items that have interactions, the numbers of test and valid items come from
    :func:`part_sizes` with ratios (1 - valid - test, valid, test) over m (so at least one test item
    when m >= 2). Training never contains a held-out item.
    """
    with_valid = cfg.valid_item_fraction > 0
    items = np.flatnonzero(x.item_counts > 0)
    parts = (1 - cfg.test_item_fraction - cfg.valid_item_fraction, cfg.valid_item_fraction,
             cfg.test_item_fraction)
    sizes = part_sizes(np.array([len(items)]), parts if with_valid else (parts[0], parts[2]))[0]
    codes = np.asarray((TRAIN, VALID, TEST) if with_valid else (TRAIN, TEST), dtype=np.int8)
    item_label = np.full(x.n_items, TRAIN, dtype=np.int8)
    item_label[items[rng.permutation(len(items))]] = np.repeat(codes, sizes)
    return make_split(x, item_label[x.item], "cold-items", cfg, with_valid=with_valid)


SPECS: list[SplitterSpec] = [
    SplitterSpec("ratio", ratio, RatioConfig,
                 "random per-user ratio split (default 8:1:1), RecBole's part-size rule"),
    SplitterSpec("leave-last-out", leave_last_out, LeaveLastOutConfig,
                 "each user's last interaction is test, second-last valid (by time)"),
    SplitterSpec("temporal", temporal, TemporalConfig,
                 "global cut in time: the latest interactions are test, the ones before valid"),
    SplitterSpec("kfold", kfold, KFoldConfig,
                 "fold i of a random k-fold partition of interactions (or of users) is test"),
    SplitterSpec("cold-items", cold_items, ColdItemsConfig,
                 "a random subset of items is held out: all their interactions are test"),
]
