"""The result store: verified reads, damaged records set aside and re-run, races that are no failure."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from recbench.config import Experiment, from_mapping
from recbench.errors import RecbenchError
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.store import ResultStore, StoreError


def ok(key: str = "k1", **extra) -> dict:
    return {"key": key, "status": "ok", "metrics": {"ndcg@10": 0.25}, **extra}


PER_USER = {"ndcg@10": np.array([0.5, 0.0, 0.25])}


def test_round_trip_records_the_per_user_sha256(tmp_path):
    store = ResultStore(tmp_path)
    record = ok()
    assert store.put(record, PER_USER) == "stored"
    assert len(record["files"]["per_user_sha256"]) == 64  # added in place, as stored
    fresh = ResultStore(tmp_path)
    assert fresh.has("k1") and fresh.get("k1") == record
    np.testing.assert_array_equal(fresh.per_user("k1")["ndcg@10"], PER_USER["ndcg@10"])
    assert [r["key"] for r in fresh.records()] == ["k1"]


def test_truncated_record_is_reported_set_aside_and_absent(tmp_path):
    ResultStore(tmp_path).put(ok(), PER_USER)
    path = tmp_path / "trials" / "k1.json"
    path.write_text(path.read_text()[:40])
    store = ResultStore(tmp_path)
    assert not store.has("k1")
    assert str(path) in store.unreadable[0] and "quarantine" in store.unreadable[0]
    assert not path.exists() and len(list((tmp_path / "quarantine").glob("*k1.json"))) == 1
    assert list((tmp_path / "quarantine").glob("*.npz"))  # its values moved along, not deleted
    with pytest.raises(StoreError, match="not stored"):
        store.get("k1")
    assert store.put(ok(), PER_USER) == "stored" and ResultStore(tmp_path).has("k1")


def test_get_of_a_damaged_record_names_its_file(tmp_path):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "k1.json").write_text('{"key": "k1", "stat')
    with pytest.raises(RecbenchError, match=r"trials/k1\.json was unreadable .* moved to"):
        ResultStore(tmp_path).get("k1")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_per_user_file_is_treated_as_unreadable(tmp_path, damage):
    record = ok()
    ResultStore(tmp_path).put(record, PER_USER)
    npz = tmp_path / "trials" / record["files"]["per_user"]
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:-10])
    else:
        npz.unlink()
    store = ResultStore(tmp_path)
    assert not store.has("k1")
    assert "per-user file" in store.unreadable[0]
    assert not (tmp_path / "trials" / "k1.json").exists()


def test_per_user_read_verifies_the_file(tmp_path):
    store = ResultStore(tmp_path)
    record = ok()
    store.put(record, PER_USER)
    assert store.has("k1")  # verified once in this process...
    npz = tmp_path / "trials" / record["files"]["per_user"]
    npz.write_bytes(npz.read_bytes()[:-10])  # ...then damaged behind its back
    with pytest.raises(StoreError, match="does not match the sha256"):
        store.per_user("k1")
    assert not store.has("k1")


def test_storing_a_stored_trial_again_is_no_failure(tmp_path):
    store = ResultStore(tmp_path)
    assert store.put(ok(), PER_USER) == "stored"
    assert store.put(ok(), PER_USER) == "already stored"
    assert store.put({"key": "k1", "status": "failed", "error": "late"}) == "already stored"
    assert not (tmp_path / "failed").exists()
    assert len(list((tmp_path / "trials").glob("*.npz"))) == 1


def test_losing_the_publish_race_keeps_the_winner(tmp_path, monkeypatch):
    winner, loser = ResultStore(tmp_path), ResultStore(tmp_path)
    monkeypatch.setattr(loser, "has", lambda key: False)  # both checked before either wrote
    first = ok()
    assert winner.put(first, PER_USER) == "stored"
    other = {"ndcg@10": np.array([1.0, 1.0, 1.0])}  # different bytes, another npz name
    assert loser.put(ok(), other) == "already stored"
    assert [p.name for p in (tmp_path / "trials").glob("*.npz")] == [first["files"]["per_user"]]
    assert ResultStore(tmp_path).get("k1") == first


def test_concurrent_puts_store_once_and_record_no_failure(tmp_path):
    barrier = threading.Barrier(4)
    results = []

    def put():
        store = ResultStore(tmp_path)
        barrier.wait()
        results.append(store.put(ok(), PER_USER))

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already stored"] * 3 + ["stored"]
    assert not (tmp_path / "failed").exists() and ResultStore(tmp_path).has("k1")


def test_unreadable_failure_record_is_set_aside(tmp_path):
    (tmp_path / "failed").mkdir(parents=True)
    (tmp_path / "failed" / "k2.json").write_text("{")
    store = ResultStore(tmp_path)
    assert list(store.records(include_failed=True)) == []
    assert "k2.json" in store.unreadable[0] and list((tmp_path / "quarantine").iterdir())


def test_a_run_reruns_a_trial_whose_record_was_truncated(tmp_path):
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 30, "n_items": 20,
                                                      "mean_per_user": 6}}],
        "models": [{"name": "most-popular"}], "seeds": [0],
        "protocol": {"metrics": ["ndcg"], "ks": [5]}})
    reg = Registry.build(load_plugins(allow=set()))
    [first] = Runner(exp, reg, RunOptions(tmp_path)).run()
    path = tmp_path / "trials" / f"{first['key']}.json"
    path.write_text(path.read_text()[:100])
    [again] = Runner(exp, reg, RunOptions(tmp_path)).run()  # no JSONDecodeError
    assert again["status"] == "ok" and again["metrics"] == first["metrics"]
    assert json.loads(path.read_text())["key"] == first["key"]
    assert list((tmp_path / "quarantine").glob("*.json"))


def test_a_record_that_cannot_be_read_for_now_is_left_in_place(tmp_path, monkeypatch):
    from pathlib import Path

    ResultStore(tmp_path).put(ok(), PER_USER)
    real_read_text, real_read_bytes = Path.read_text, Path.read_bytes

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    store = ResultStore(tmp_path)
    with pytest.raises(StoreError, match="could not be read"):
        store.get("k1")
    monkeypatch.setattr(Path, "read_text", real_read_text)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(StoreError, match="could not be read"):
        ResultStore(tmp_path).per_user("k1")
    monkeypatch.setattr(Path, "read_bytes", real_read_bytes)
    assert not (tmp_path / "quarantine").exists()  # nothing moved: the record is fine
    assert ResultStore(tmp_path).get("k1")["metrics"] == {"ndcg@10": 0.25}


def test_per_user_values_are_stored_with_the_user_ids_they_align_with(tmp_path):
    from recbench.store import USER_IDS
    store = ResultStore(tmp_path)
    store.put(ok(), {**PER_USER, USER_IDS: np.array([3, 7, 9])})
    fresh = ResultStore(tmp_path)
    assert set(fresh.per_user("k1")) == {"ndcg@10"}  # the ids are not a metric
    np.testing.assert_array_equal(fresh.user_ids("k1"), [3, 7, 9])
    ResultStore(tmp_path).put(ok("old"), PER_USER)  # written before ids were stored
    assert fresh.user_ids("old") is None
    with pytest.raises(RecbenchError, match="do not align with its 2 user ids"):
        store.put(ok("k2"), {**PER_USER, USER_IDS: np.array([1, 2])})
    assert not store.has("k2")
