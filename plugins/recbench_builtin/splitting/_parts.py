"""Shared pieces of the built-in split protocols: part sizes (RecBole's rule), per-user random
ranks, labelling rows by part, and building the :class:`Split`.

Every splitter is deterministic given ``rng`` (its only source of randomness), vectorised over
users (no Python loop over users or items), keeps the input's id space ``(n_users, n_items)`` in
every part, and records ``{"splitter": name, **config}`` as the split's protocol. A split whose
test part would be empty raises :class:`DataError`: nothing could be evaluated.

Part sizes follow RecBole (``Dataset._calcu_split_ids``, v1.x) so that per-user ratio splits have
the same sizes as RecBole's ``RS`` splits; see :func:`part_sizes` for the exact rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench.api import DataError, Interactions, Split, to_dict

TRAIN, VALID, TEST = 0, 1, 2


def _normalised(ratios: tuple[float, ...]) -> tuple[float, ...]:
    """``ratios / sum(ratios)`` computed exactly as RecBole does, so float products match."""
    total = sum(ratios)
    return tuple(r / total for r in ratios)


def part_sizes(n: np.ndarray, ratios: tuple[float, ...]) -> np.ndarray:
    """Sizes ``[len(n), len(ratios)]`` of each part for groups of ``n`` rows (RecBole's rule).

    With ratios normalised to sum 1 and parts ordered (train, [valid,] test):

    1. every part but the first gets ``floor(ratio * n)``; train gets the remainder;
    2. then, from the last part backwards, a part whose ``ratio * n`` lies strictly between 0 and 1
       takes one row from train, as long as train still has more than one row (once train is down
       to one row, no further part is bumped).

    So train is never emptied: a group of 1 stays wholly in train, a group of 2 under 0.8/0.1/0.1
    becomes 1 train + 1 test, a group of 3 becomes 1/1/1, a group of 10 becomes 8/1/1.
    """
    n = np.asarray(n, dtype=np.int64)
    ratios = _normalised(tuple(ratios))
    cnt = np.floor(np.multiply.outer(n, np.asarray(ratios, dtype=np.float64))).astype(np.int64)
    cnt[:, 0] = n - cnt[:, 1:].sum(axis=1)
    active = np.ones(len(n), dtype=bool)
    for i in range(1, len(ratios)):  # a loop over parts, vectorised over groups
        active &= cnt[:, 0] > 1  # RecBole stops bumping for a group once train has <= 1 row
        exact = ratios[-i] * n.astype(np.float64)
        bump = active & (exact > 0) & (exact < 1)
        cnt[bump, -i] += 1
        cnt[bump, 0] -= 1
    return cnt


def group_starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def random_rank(x: Interactions, rng: np.random.Generator) -> np.ndarray:
    """Each row's 0-based position in a uniform random shuffle of its user's rows."""
    order = np.lexsort((rng.permutation(len(x)), x.user))  # by user, then random key
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x)) - group_starts(x.user_counts)[x.user[order]]
    return rank


def label_by_rank(rank: np.ndarray, group: np.ndarray, sizes: np.ndarray,
                   codes: tuple[int, ...]) -> np.ndarray:
    """Label rows by how many part boundaries their rank within ``group`` has passed."""
    bounds = np.cumsum(sizes, axis=1)[:, :-1]
    part = (rank[:, None] >= bounds[group]).sum(axis=1)
    return np.asarray(codes, dtype=np.int8)[part]


def random_partition(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each of ``n`` elements: a random permutation cut into k folds of sizes differing by
    at most one, the first ``n % k`` folds one larger (as scikit-learn's KFold)."""
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.repeat(np.arange(k), sizes)
    return fold


def require_timestamps(x: Interactions, name: str, advice: str) -> None:
    if x.timestamp is None:
        raise DataError(f"splitter {name!r} needs timestamps but the interactions have none; "
                        f"{advice}")


def make_split(x: Interactions, labels: np.ndarray, name: str, cfg: Any,
                with_valid: bool) -> Split:
    test = x.subset(np.flatnonzero(labels == TEST))
    if len(test) == 0:
        raise DataError(f"splitter {name!r} ({to_dict(cfg)}) left the test part empty for "
                        f"{len(x)} interactions; use more data or a larger test share")
    valid = x.subset(np.flatnonzero(labels == VALID)) if with_valid else None
    return Split(train=x.subset(np.flatnonzero(labels == TRAIN)), test=test, valid=valid,
                 protocol={"splitter": name, **to_dict(cfg)})
