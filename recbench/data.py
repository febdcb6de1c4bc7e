"""Immutable, typed containers: interactions over dense ids, feature tables, datasets, splits, batches.

Internal ids are dense ``0..n-1`` integers; a :class:`Dataset` keeps the original ids so results can
be mapped back. Arrays are made read-only on construction, so no plugin can modify the harness's data
in place (the contract kit checks it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import DataError


def _frozen(a: np.ndarray | None, dtype: Any) -> np.ndarray | None:
    """A read-only copy (``dtype`` None keeps the dtype)."""
    if a is None:
        return None
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _hash_arrays(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"\x1e")
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions over a fixed id space ``[0, n_users) x [0, n_items)``.

    ``rating`` and ``timestamp`` are optional. Several subsets (train/valid/test) share one id space.
    """

    user: np.ndarray
    item: np.ndarray
    n_users: int
    n_items: int
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # more per-row columns (basket, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", {k: _frozen(v, None) for k, v in self.extra.items()})
        object.__setattr__(self, "user", _frozen(self.user, np.int32))
        object.__setattr__(self, "item", _frozen(self.item, np.int32))
        object.__setattr__(self, "rating", _frozen(self.rating, np.float32))
        object.__setattr__(self, "timestamp", _frozen(self.timestamp, np.int64))
        n = len(self.user)
        columns = {"item": self.item, "rating": self.rating, "timestamp": self.timestamp, **self.extra}
        for name, a in columns.items():
            if a is not None and (a.ndim != 1 or len(a) != n):
                raise DataError(f"interactions: column {name!r} has shape {a.shape}, expected ({n},)")
        if n:
            if self.user.min() < 0 or self.user.max() >= self.n_users:
                raise DataError(f"interactions: user ids must lie in [0, {self.n_users}), got "
                                f"[{self.user.min()}, {self.user.max()}]")
            if self.item.min() < 0 or self.item.max() >= self.n_items:
                raise DataError(f"interactions: item ids must lie in [0, {self.n_items}), got "
                                f"[{self.item.min()}, {self.item.max()}]")
        if self.rating is not None and not np.isfinite(self.rating).all():
            bad = int(np.flatnonzero(~np.isfinite(self.rating))[0])
            raise DataError(f"interactions: rating is NaN or infinite at row {bad}; drop or fill it")

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The interactions at ``rows`` (indices or a boolean mask), same id space."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Interactions(self.user[rows], self.item[rows], self.n_users, self.n_items,
                            pick(self.rating), pick(self.timestamp),
                            {k: v[rows] for k, v in self.extra.items()})

    def with_ids(self, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> Interactions:
        """The same rows and columns under new user/item ids (after re-indexing)."""
        return Interactions(user, item, n_users, n_items, self.rating, self.timestamp, self.extra)

    @classmethod
    def concat(cls, *parts: Interactions) -> Interactions:
        """Rows of several parts of one id space; rating/timestamp kept only if all parts have them."""
        def column(name: str) -> np.ndarray | None:
            cols = [getattr(p, name) for p in parts]
            return None if any(c is None for c in cols) else np.concatenate(cols)
        first = parts[0]
        extra = {k: np.concatenate([p.extra[k] for p in parts]) for k in first.extra
                 if all(k in p.extra for p in parts)}
        return cls(column("user"), column("item"), first.n_users, first.n_items,
                   column("rating"), column("timestamp"), extra)

    @cached_property
    def fingerprint(self) -> str:
        return _hash_arrays(self.n_users, self.n_items, self.user, self.item, self.rating,
                            self.timestamp, *(x for k in sorted(self.extra) for x in (k, self.extra[k])))

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """Binary users x items matrix (duplicates collapse to 1)."""
        m = sp.csr_matrix((np.ones(len(self), np.float32), (self.user, self.item)),
                          shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @cached_property
    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    @cached_property
    def order(self) -> np.ndarray:
        """Row order by (user, timestamp, row), stable: equal timestamps keep file order."""
        keys = (self.user,) if self.timestamp is None else (self.timestamp, self.user)
        return np.lexsort(keys)

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user item sequences in time order, as CSR-style ``(indptr [n_users+1], items)``."""
        items = self.item[self.order]
        indptr = np.zeros(self.n_users + 1, np.int64)
        np.cumsum(self.user_counts, out=indptr[1:])
        return indptr, items


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """Features aligned with internal ids: row ``i`` describes user/item ``i``.

    ``values`` is a dense float32 array or a scipy CSR matrix; ``columns`` names its columns.
    """

    values: np.ndarray | sp.csr_matrix
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        if sp.issparse(self.values):
            object.__setattr__(self, "values", sp.csr_matrix(self.values, dtype=np.float32))
        else:
            object.__setattr__(self, "values", _frozen(self.values, np.float32))
            if self.values.ndim != 2:
                raise DataError(f"feature table must be 2-D, got shape {self.values.shape}")
        if self.values.shape[1] != len(self.columns):
            raise DataError(f"feature table has {self.values.shape[1]} columns but "
                            f"{len(self.columns)} names")

    def take(self, rows: np.ndarray) -> FeatureTable:
        return FeatureTable(self.values[rows], self.columns)


@dataclass(frozen=True, eq=False)
class Dataset:
    """What a dataset plugin returns: interactions, original ids, optional features, provenance."""

    name: str
    interactions: Interactions
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_features: FeatureTable | None = None
    user_features: FeatureTable | None = None
    checksum: str = ""  # of the source data; filled from the content when empty
    metadata: dict[str, Any] = field(default_factory=dict)
    # Per-id columns of any dtype that are not numeric features (titles, descriptions, country).
    item_info: dict[str, np.ndarray] = field(default_factory=dict)
    user_info: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = self.interactions
        if len(self.user_ids) != x.n_users or len(self.item_ids) != x.n_items:
            raise DataError(f"dataset {self.name!r}: {len(self.user_ids)} user ids / "
                            f"{len(self.item_ids)} item ids for an id space of "
                            f"{x.n_users} x {x.n_items}")
        for what, table, n in (("item", self.item_features, x.n_items),
                               ("user", self.user_features, x.n_users)):
            if table is not None and table.values.shape[0] != n:
                raise DataError(f"dataset {self.name!r}: {what} features have "
                                f"{table.values.shape[0]} rows for {n} {what}s")
        for what, info, n in (("item", self.item_info, x.n_items), ("user", self.user_info, x.n_users)):
            for key, values in info.items():
                if len(values) != n:
                    raise DataError(f"dataset {self.name!r}: {what}_info[{key!r}] has "
                                    f"{len(values)} rows for {n} {what}s")
        if not self.checksum:
            object.__setattr__(self, "checksum", "content:" + x.fingerprint[:16])

    def replace(self, **changes: Any) -> Dataset:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_arrays(cls, name: str, user: np.ndarray, item: np.ndarray,
                    rating: np.ndarray | None = None, timestamp: np.ndarray | None = None,
                    **kwargs: Any) -> Dataset:
        """Build from raw (original) ids: any hashable values, mapped to dense ids in sorted order."""
        user, item = np.asarray(user), np.asarray(item)
        if len(user) != len(item):
            raise DataError(f"dataset {name!r}: {len(user)} user ids but {len(item)} item ids")
        for col, a in (("user", user), ("item", item)):
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise DataError(f"dataset {name!r}: {col} id is NaN at row "
                                f"{int(np.flatnonzero(~np.isfinite(a))[0])}")
            if a.dtype == object and any(v is None for v in a):
                raise DataError(f"dataset {name!r}: {col} id is missing at row "
                                f"{next(i for i, v in enumerate(a) if v is None)}")
        user_ids, u = np.unique(user, return_inverse=True)
        item_ids, i = np.unique(item, return_inverse=True)
        x = Interactions(u, i, len(user_ids), len(item_ids), rating, timestamp)
        return cls(name, x, user_ids, item_ids, **kwargs)


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test over one id space, with the protocol that made it."""

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    protocol: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {(p.n_users, p.n_items) for p in (self.train, self.test, self.valid) if p is not None}
        if len(shapes) != 1:
            raise DataError(f"split parts disagree on the id space: {sorted(shapes)}")

    @cached_property
    def fingerprint(self) -> str:
        parts = [self.train.fingerprint, self.test.fingerprint,
                 self.valid.fingerprint if self.valid is not None else None]
        return _hash_arrays(*parts)


class UserBatch:
    """What ``FittedModel.score`` receives: a fixed-size batch of users and their training history.

    ``history[b, :lengths[b]]`` holds user ``b``'s training items in time order; the rest is padding
    with the value ``n_items`` (an out-of-range id: ``.at[].set(mode="drop")`` ignores it).
    ``valid[b]`` is False for padding rows that fill the last batch up to the fixed size.

    The evaluator builds ``history`` and ``lengths`` when a model first reads them
    (:meth:`on_demand`): a model that never does (a latent-factor model) costs no ``[B, L]`` list,
    a tenth of an ML-1M evaluation.
    """

    __slots__ = ("users", "valid", "n_items", "_lists", "_load")

    def __init__(self, users: Any, history: Any, lengths: Any, valid: Any, n_items: int):
        self.users = users  # int32 [B]
        self.valid = valid  # bool [B]
        self.n_items = n_items
        self._lists: tuple[Any, Any] | None = (history, lengths)  # int32 [B, L], int32 [B]
        self._load: Callable[[], tuple[Any, Any]] | None = None

    @classmethod
    def on_demand(cls, users: Any, valid: Any, n_items: int,
                  load: Callable[[], tuple[Any, Any]]) -> UserBatch:
        """A batch whose ``(history, lengths)`` come from ``load()`` when first read."""
        batch = cls(users, None, None, valid, n_items)
        batch._lists, batch._load = None, load
        return batch

    @property
    def history_read(self) -> bool:
        """Whether the history was read (or given): the evaluator builds it ahead from then on."""
        return self._lists is not None

    def _history(self) -> tuple[Any, Any]:
        if self._lists is None:
            import jax

            # Concrete arrays even when a model first reads them while JAX traces its code.
            with jax.ensure_compile_time_eval():
                self._lists = self._load()  # type: ignore[misc]
            self._load = None
        return self._lists

    @property
    def history(self) -> Any:
        return self._history()[0]

    @property
    def lengths(self) -> Any:
        return self._history()[1]

    def __repr__(self) -> str:
        return (f"UserBatch({getattr(self.users, 'shape', '?')} users, n_items={self.n_items}, "
                f"history {'read' if self.history_read else 'not built yet'})")
