"""Splitters: partitions, sizes, determinism, time order, cold items, config errors, real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbench.config import from_mapping
from recbench.data import Interactions, Split
from recbench.errors import ConfigError, DataError
from recbench_builtin.splitting._parts import part_sizes
from recbench_builtin.splitting.protocols import (
    SPECS,
    ColdItemsConfig,
    KFoldConfig,
    LeaveLastOutConfig,
    RatioConfig,
    TemporalConfig,
    cold_items,
    kfold,
    leave_last_out,
    ratio,
    temporal,
)

FAST = settings(max_examples=40, deadline=None)
DATA = Path(os.environ.get("RECBENCH_TEST_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def _interactions(user, item, timestamp=None, n_users=None, n_items=None) -> Interactions:
    """Interactions whose ``rating`` holds the row index, so rows can be traced through a split."""
    user, item = np.asarray(user), np.asarray(item)
    return Interactions(user, item, n_users or int(user.max()) + 1, n_items or int(item.max()) + 1,
                        rating=np.arange(len(user)), timestamp=timestamp)


@st.composite
def interactions(draw, min_rows: int = 1, ts_range: int = 5) -> Interactions:
    """Small random interactions with repeated users/items and tied timestamps."""
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 8))
    n = draw(st.integers(min_rows, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return _interactions(rng.integers(0, n_users, n), rng.integers(0, n_items, n),
                         rng.integers(0, ts_range, n), n_users, n_items)


def _rows(part: Interactions | None) -> np.ndarray:
    return np.array([], dtype=np.int64) if part is None else part.rating.astype(np.int64)


def _assert_partition(x: Interactions, s: Split) -> None:
    rows = np.concatenate([_rows(s.train), _rows(s.valid), _rows(s.test)])
    assert len(rows) == len(x)
    assert np.array_equal(np.sort(rows), np.arange(len(x)))  # disjoint and covering
    for part in (s.train, s.valid, s.test):
        if part is not None:
            assert (part.n_users, part.n_items) == (x.n_users, x.n_items)
            np.testing.assert_array_equal(part.user, x.user[_rows(part)])
            np.testing.assert_array_equal(part.item, x.item[_rows(part)])


def _recbole_sizes(tot: int, ratios: list[float]) -> list[int]:
    """RecBole 1.x ``Dataset._calcu_split_ids``, transcribed, returning part sizes."""
    total = sum(ratios)
    ratios = [r / total for r in ratios]
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def _load_ml100k() -> Interactions:
    raw = np.loadtxt(DATA / "ml-100k" / "u.data", dtype=np.int64)
    user_ids, u = np.unique(raw[:, 0], return_inverse=True)
    item_ids, i = np.unique(raw[:, 1], return_inverse=True)
    return Interactions(u, i, len(user_ids), len(item_ids), raw[:, 2], raw[:, 3])


# ---------------------------------------------------------------- part sizes


RATIOS = st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.1, 0.2), (0.8, 0.2), (0.6, 0.2, 0.2),
                          (0.9, 0.1), (0.5, 0.5), (0.34, 0.33, 0.33)])


@FAST
@given(n=st.lists(st.integers(0, 300), min_size=1, max_size=20), ratios=RATIOS)
def test_part_sizes_match_recbole(n, ratios):
    got = part_sizes(np.array(n), ratios)
    assert got.tolist() == [_recbole_sizes(t, list(ratios)) for t in n]
    assert (got.sum(axis=1) == n).all() and (got >= 0).all()


def test_part_sizes_small_groups():
    sizes = part_sizes(np.array([1, 2, 3, 10, 15]), (0.8, 0.1, 0.1)).tolist()
    assert sizes == [[1, 0, 0], [1, 0, 1], [1, 1, 1], [8, 1, 1], [13, 1, 1]]


# ---------------------------------------------------------------- ratio


@FAST
@given(x=interactions(min_rows=20), ratios=RATIOS, seed=st.integers(0, 2**32 - 1))
def test_ratio_partitions_with_recbole_sizes(x, ratios, seed):
    try:
        s = ratio(x, RatioConfig(ratios), np.random.default_rng(seed))
    except DataError:  # every user has one row: nothing can be held out
        assert (x.user_counts <= 1).all()
        return
    _assert_partition(x, s)
    assert (s.valid is None) == (len(ratios) == 2)
    expected = part_sizes(x.user_counts, ratios)
    got = [np.bincount(p.user, minlength=x.n_users) for p in (s.train, s.valid, s.test)
           if p is not None]
    np.testing.assert_array_equal(np.stack(got, axis=1), expected)
    assert s.protocol == {"splitter": "ratio", "ratios": list(ratios)}


def test_ratio_is_deterministic_by_seed():
    rng = np.random.default_rng(7)
    x = _interactions(np.repeat(np.arange(40), 20), rng.integers(0, 50, 800))
    a = ratio(x, RatioConfig(), np.random.default_rng(1))
    b = ratio(x, RatioConfig(), np.random.default_rng(1))
    c = ratio(x, RatioConfig(), np.random.default_rng(2))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


def test_ratio_shuffles_within_user():
    # 1 user, 1000 rows: the test rows must not simply be the last ones in the file.
    x = _interactions(np.zeros(1000, int), np.arange(1000))
    s = ratio(x, RatioConfig(), np.random.default_rng(0))
    assert (len(s.train), len(s.valid), len(s.test)) == (800, 100, 100)
    assert _rows(s.test).min() < 800


# ---------------------------------------------------------------- leave-last-out


def _naive_last(x: Interactions, user: int) -> list[int]:
    """User's rows in (timestamp, row) order, by plain Python sorting."""
    rows = [r for r in range(len(x)) if x.user[r] == user]
    return sorted(rows, key=lambda r: (x.timestamp[r], r))


@FAST
@given(x=interactions(min_rows=10, ts_range=3), with_valid=st.booleans())
def test_leave_last_out_takes_latest_with_stable_ties(x, with_valid):
    cfg = LeaveLastOutConfig(valid=with_valid)
    try:
        s = leave_last_out(x, cfg, np.random.default_rng(0))
    except DataError:
        assert (x.user_counts <= 1).all()
        return
    _assert_partition(x, s)
    test, valid = set(_rows(s.test)), set(_rows(s.valid))
    for u in range(x.n_users):
        seq = _naive_last(x, u)
        want_test = seq[-1:] if len(seq) >= 2 else []
        want_valid = seq[-2:-1] if with_valid and len(seq) >= 3 else []
        assert {r for r in test if x.user[r] == u} == set(want_test)
        assert {r for r in valid if x.user[r] == u} == set(want_valid)


def test_leave_last_out_hand_example():
    # user 0: ts 5 at rows 0 and 2 (tie: row 2 is later), ts 1 at row 1; user 1: rows 3, 4.
    x = _interactions([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], timestamp=[5, 1, 5, 9, 2])
    s = leave_last_out(x, LeaveLastOutConfig(), np.random.default_rng(0))
    assert _rows(s.test).tolist() == [2, 3]
    assert _rows(s.valid).tolist() == [0]
    assert _rows(s.train).tolist() == [1, 4]


def test_leave_last_out_needs_timestamps_unless_row_order():
    x = _interactions([0, 0, 0, 1, 1], [0, 1, 2, 0, 1])
    with pytest.raises(DataError, match="timestamps"):
        leave_last_out(x, LeaveLastOutConfig(), np.random.default_rng(0))
    s = leave_last_out(x, LeaveLastOutConfig(order="row"), np.random.default_rng(0))
    assert _rows(s.test).tolist() == [2, 4]
    assert _rows(s.valid).tolist() == [1]


# ---------------------------------------------------------------- temporal


@FAST
@given(x=interactions(min_rows=30, ts_range=40),
       fractions=st.sampled_from([(0.1, 0.1), (0.2, 0.0), (0.3, 0.2)]))
def test_temporal_cut_respects_time(x, fractions):
    cfg = TemporalConfig(*fractions)
    try:
        s = temporal(x, cfg, np.random.default_rng(0))
    except DataError as e:  # ties ate a whole part: legitimate on tiny tied data
        assert "empty" in str(e)
        return
    _assert_partition(x, s)
    parts = [s.train] if s.valid is None else [s.train, s.valid]
    earlier = np.concatenate([p.timestamp for p in parts])
    assert s.test.timestamp.min() > earlier.max()
    if s.valid is not None:
        assert s.valid.timestamp.min() > s.train.timestamp.max()
        assert s.valid.timestamp.max() < s.test.timestamp.min()


def test_temporal_sizes_without_ties_and_ties_go_earlier():
    x = _interactions(np.zeros(20, int), np.arange(20), timestamp=np.arange(20)[::-1])
    s = temporal(x, TemporalConfig(0.1, 0.2), np.random.default_rng(0))
    assert (len(s.train), len(s.valid), len(s.test)) == (14, 4, 2)
    # 8 train rows by target; the tie at the cut (timestamp 7) goes wholly to train.
    ts = np.array([7, 0, 1, 2, 3, 4, 5, 6, 9, 7])
    s = temporal(_interactions(np.zeros(10, int), np.arange(10), timestamp=ts),
                 TemporalConfig(0.2, 0.0), np.random.default_rng(0))
    assert _rows(s.train).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9] and _rows(s.test).tolist() == [8]
    # When the tie spans the whole test share, the test part would be empty: a clear error.
    ts = np.array([0, 1, 2, 3, 4, 5, 6, 8, 8, 8])
    with pytest.raises(DataError, match="test part empty"):
        temporal(_interactions(np.zeros(10, int), np.arange(10), timestamp=ts),
                 TemporalConfig(0.2, 0.0), np.random.default_rng(0))
    with pytest.raises(DataError, match="timestamps"):
        temporal(_interactions([0, 1], [0, 1]), TemporalConfig(), np.random.default_rng(0))


# ---------------------------------------------------------------- k-fold


@FAST
@given(x=interactions(min_rows=10), k=st.integers(2, 5), seed=st.integers(0, 1000))
def test_kfold_interactions_folds_partition_rows(x, k, seed):
    tests = []
    for fold in range(k):
        s = kfold(x, KFoldConfig(k=k, fold=fold), np.random.default_rng(seed))
        _assert_partition(x, s)
        assert s.valid is None
        tests.append(_rows(s.test))
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(len(x)))


def test_kfold_users_holds_out_part_of_test_users():
    rng = np.random.default_rng(3)
    x = _interactions(np.repeat(np.arange(30), 10), rng.integers(0, 20, 300))
    test_users = []
    for fold in range(5):
        cfg = KFoldConfig(k=5, fold=fold, by="users", test_ratio=0.2)
        s = kfold(x, cfg, np.random.default_rng(11))
        _assert_partition(x, s)
        users = np.unique(s.test.user)
        assert len(users) == 6  # 30 users in 5 folds
        np.testing.assert_array_equal(np.bincount(s.test.user, minlength=30)[users], 2)
        test_users.append(users)
    assert np.array_equal(np.sort(np.concatenate(test_users)), np.arange(30))


# ---------------------------------------------------------------- cold items


@FAST
@given(x=interactions(min_rows=10), seed=st.integers(0, 1000), valid=st.sampled_from([0.0, 0.2]))
def test_cold_items_never_in_train(x, seed, valid):
    try:
        s = cold_items(x, ColdItemsConfig(0.3, valid), np.random.default_rng(seed))
    except DataError:
        assert np.count_nonzero(x.item_counts) < 2
        return
    _assert_partition(x, s)
    train_items = set(s.train.item.tolist())
    assert not train_items & set(s.test.item.tolist())
    if s.valid is not None:
        assert not train_items & set(s.valid.item.tolist())
        assert not set(s.valid.item.tolist()) & set(s.test.item.tolist())


def test_cold_items_item_counts():
    x = _interactions(np.arange(200) % 7, np.arange(200) % 20)
    s = cold_items(x, ColdItemsConfig(0.1, 0.2), np.random.default_rng(0))
    assert (len(np.unique(s.test.item)), len(np.unique(s.valid.item))) == (2, 4)


# ---------------------------------------------------------------- configs and registration


@pytest.mark.parametrize("make, message", [
    (lambda: RatioConfig((0.8, 0.1)), "sum to 1"),
    (lambda: RatioConfig((0.7, 0.1, 0.1, 0.1)), "2 parts"),
    (lambda: RatioConfig((1.0, 0.0)), r"\(0, 1\]"),
    (lambda: KFoldConfig(k=1), "k must be >= 2"),
    (lambda: KFoldConfig(k=5, fold=5), r"\[0, 4\]"),
    (lambda: KFoldConfig(test_ratio=1.0), r"\(0, 1\)"),
    (lambda: TemporalConfig(test_fraction=0.0), r"\(0, 1\)"),
    (lambda: TemporalConfig(0.6, 0.4), "< 1"),
    (lambda: ColdItemsConfig(0.0), r"\(0, 1\)"),
    (lambda: ColdItemsConfig(0.5, 0.5), "< 1"),
])
def test_bad_configs_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_configs_from_mapping():
    assert from_mapping(RatioConfig, {"ratios": [0.8, 0.2]}) == RatioConfig((0.8, 0.2))
    with pytest.raises(ConfigError, match="sum to 1"):
        from_mapping(RatioConfig, {"ratios": [0.8, 0.1]})
    with pytest.raises(ConfigError, match="not one of"):
        from_mapping(KFoldConfig, {"by": "user"})


def test_register_splitters_returns_the_builtin_protocols():
    from recbench_builtin.splitters import register_splitters

    specs = [s for s in register_splitters() if not s.takes_dataset]  # `given` reads files: tests/test_splitfiles.py
    names = [s.name for s in specs]
    assert names == ["ratio", "leave-last-out", "temporal", "kfold", "cold-items"]
    assert specs == SPECS and specs is not SPECS
    x = _interactions(np.repeat(np.arange(10), 10), np.arange(100) % 13, np.arange(100))
    for spec in specs:
        s = spec.split(x, spec.config(), np.random.default_rng(0))
        assert s.protocol["splitter"] == spec.name and spec.description
        _assert_partition(x, s)


# ---------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.shared_data("ml-100k")
def test_ml100k_ratio_811_sizes():
    x = _load_ml100k()
    assert len(x) == 100_000 and x.n_users == 943
    s = ratio(x, RatioConfig((0.8, 0.1, 0.1)), np.random.default_rng(0))
    # Sizes depend only on per-user counts (RecBole's rule), not on the seed.
    assert (len(s.train), len(s.valid), len(s.test)) == (80_808, 9_596, 9_596)
    s = leave_last_out(x, LeaveLastOutConfig(), np.random.default_rng(0))
    assert (len(s.train), len(s.valid), len(s.test)) == (98_114, 943, 943)

