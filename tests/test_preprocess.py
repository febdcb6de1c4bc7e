"""Preprocessing: dedup, implicit threshold, k-core (core property, maximality), compact, apply."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbench.config import Preprocess
from recbench.data import Dataset, FeatureTable
from recbench.errors import DataError
from recbench.preprocess import apply, compact, dedup, implicit, k_core

FAST = settings(max_examples=40, deadline=None)
DATA = Path(os.environ.get("RECBENCH_TEST_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def _ds(user, item, rating=None, timestamp=None, **kwargs) -> Dataset:
    return Dataset.from_arrays("toy", np.asarray(user), np.asarray(item), rating, timestamp,
                               **kwargs)


def _triples(ds: Dataset) -> list[tuple]:
    """(original user, original item, rating, timestamp) per row, in row order."""
    x = ds.interactions
    rating = x.rating if x.rating is not None else np.zeros(len(x))
    ts = x.timestamp if x.timestamp is not None else np.zeros(len(x), int)
    return list(zip(ds.user_ids[x.user].tolist(), ds.item_ids[x.item].tolist(),
                    rating.tolist(), ts.tolist()))


@st.composite
def datasets(draw, max_users: int = 6, max_items: int = 6, max_rows: int = 40) -> Dataset:
    n = draw(st.integers(1, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    user = rng.integers(0, draw(st.integers(1, max_users)), n) + 100  # original ids != dense ids
    item = rng.integers(0, draw(st.integers(1, max_items)), n) + 500
    # Row index as rating traces rows; few timestamps make ties.
    return _ds(user, item, rating=np.arange(n), timestamp=rng.integers(0, 3, n))


# ---------------------------------------------------------------- dedup


def test_dedup_hand_example():
    # Pair (1, 10) at rows 0, 2, 3 with timestamps 5, 2, 5; pair (2, 10) once.
    ds = _ds([1, 2, 1, 1], [10, 10, 10, 10], rating=[1, 2, 3, 4], timestamp=[5, 9, 2, 5])
    assert [r[2] for r in _triples(dedup(ds, "first"))] == [2.0, 3.0]  # ts 2 is earliest
    assert [r[2] for r in _triples(dedup(ds, "last"))] == [2.0, 4.0]  # tie at 5: later row wins
    assert dedup(ds, "none") is ds
    no_time = _ds([1, 2, 1, 1], [10, 10, 10, 10], rating=[1, 2, 3, 4])
    assert [r[2] for r in _triples(dedup(no_time, "first"))] == [1.0, 2.0]
    assert [r[2] for r in _triples(dedup(no_time, "last"))] == [2.0, 4.0]


@FAST
@given(ds=datasets(), policy=st.sampled_from(["first", "last"]))
def test_dedup_matches_naive(ds, policy):
    rows = _triples(ds)
    best: dict[tuple, tuple] = {}
    for r, (u, i, _, t) in enumerate(rows):
        key = (t, r)
        if (u, i) not in best or (key < best[(u, i)] if policy == "first" else key > best[(u, i)]):
            best[(u, i)] = key
    keep = sorted(r for _, r in best.values())
    assert _triples(dedup(ds, policy)) == [rows[r] for r in keep]


# ---------------------------------------------------------------- implicit


def test_implicit_threshold_keeps_ratings():
    ds = _ds([1, 1, 2], [1, 2, 1], rating=[3.0, 4.0, 5.0])
    out = implicit(ds, 4.0)
    assert [r[2] for r in _triples(out)] == [4.0, 5.0]
    with pytest.raises(DataError, match="no ratings"):
        implicit(_ds([1], [1]), 4.0)


# ---------------------------------------------------------------- compact and k-core


def test_compact_reindexes_and_takes_features():
    feats = FeatureTable(np.arange(3, dtype=np.float32)[:, None], ("f",))
    ds = _ds([1, 2, 3], ["a", "b", "d"], item_features=feats)
    sub = ds.replace(interactions=ds.interactions.subset(np.array([0, 2])))
    out = compact(sub)
    assert out.user_ids.tolist() == [1, 3] and out.item_ids.tolist() == ["a", "d"]
    assert out.interactions.user.tolist() == [0, 1] and out.interactions.item.tolist() == [0, 1]
    assert out.item_features.values[:, 0].tolist() == [0.0, 2.0]


def test_k_core_hand_example_is_maximal():
    # Users A, B, C each rated items x, y; user D rated x and z; item z only by D.
    # 2-core: z goes (1 rating), then D has 1 rating and goes; A, B, C with x, y remain.
    ds = _ds(list("AAABBCCD") + ["D"], list("xyxxyxyx") + ["z"])
    ds = dedup(ds, "first")  # A rated x twice
    out = k_core(ds, 2, 2)
    assert out.user_ids.tolist() == ["A", "B", "C"] and out.item_ids.tolist() == ["x", "y"]
    assert len(out.interactions) == 6
    assert k_core(ds, 3, 3).interactions.n_users == 0  # every user has only 2 distinct items
    assert len(k_core(ds, 2, 3).interactions) == 6


def _brute_force_core(ds: Dataset, uc: int, ic: int) -> set[int]:
    """Rows of the largest induced subgraph with the core property, by trying every subset."""
    x = ds.interactions
    best: set[int] = set()
    for us in itertools.product([False, True], repeat=x.n_users):
        for its in itertools.product([False, True], repeat=x.n_items):
            rows = np.flatnonzero(np.array(us)[x.user] & np.array(its)[x.item])
            if len(rows) <= len(best):
                continue
            uc_ok = np.bincount(x.user[rows], minlength=x.n_users)[list(np.flatnonzero(us))]
            ic_ok = np.bincount(x.item[rows], minlength=x.n_items)[list(np.flatnonzero(its))]
            if (uc_ok >= uc).all() and (ic_ok >= ic).all():
                best = set(rows.tolist())
    return best


@FAST
@given(ds=datasets(max_users=4, max_items=4, max_rows=20), uc=st.integers(0, 4),
       ic=st.integers(0, 4))
def test_k_core_is_the_maximal_core(ds, uc, ic):
    out = k_core(ds, uc, ic)
    x = out.interactions
    assert (x.user_counts >= max(uc, 1)).all() and (x.item_counts >= max(ic, 1)).all()
    assert set(x.rating.astype(int).tolist()) == _brute_force_core(ds, uc, ic)
    # Original ids follow the rows.
    assert _triples(out) == [_triples(ds)[r] for r in x.rating.astype(int)]


# ---------------------------------------------------------------- apply


def test_apply_records_steps_and_leaves_input_alone():
    ds = _ds([1, 1, 1, 2, 2, 3, 3], [1, 1, 2, 1, 2, 3, 1], rating=[5, 1, 4, 4, 5, 3, 5],
             timestamp=[1, 2, 3, 4, 5, 6, 7], metadata={"source": "toy"})
    before = ds.interactions.fingerprint
    out = apply(ds, Preprocess(dedup="first", implicit_threshold=4.0, user_core=2, item_core=2))
    assert ds.interactions.fingerprint == before and ds.metadata == {"source": "toy"}
    assert out.metadata["source"] == "toy"
    record = out.metadata["preprocess"]
    assert [s["step"] for s in record["steps"]] == ["input", "dedup", "implicit", "k-core"]
    # dedup drops (1, 1) at ts 2; the threshold drops (3, 3); the 2-core then drops user 3.
    assert [s["interactions"] for s in record["steps"]] == [7, 6, 5, 4]
    assert record["config"]["dedup"] == "first"
    assert out.user_ids.tolist() == [1, 2] and out.item_ids.tolist() == [1, 2]


def test_apply_names_the_step_that_emptied_the_data():
    ds = _ds([1, 1, 2], [1, 2, 1], rating=[1, 2, 3])
    with pytest.raises(DataError, match="implicit threshold"):
        apply(ds, Preprocess(implicit_threshold=4.0))
    with pytest.raises(DataError, match="k-core"):
        apply(ds, Preprocess(user_core=5))


# ---------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.shared_data("ml-100k")
def test_ml100k_5core_keeps_all_users():
    raw = np.loadtxt(DATA / "ml-100k" / "u.data", dtype=np.int64)
    ds = Dataset.from_arrays("ml-100k", raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3])
    out = apply(ds, Preprocess(user_core=5, item_core=5))
    x = out.interactions
    assert (x.n_users, x.n_items, len(x)) == (943, 1349, 99_287)
    assert x.user_counts.min() >= 5 and x.item_counts.min() >= 5
