"""The parsed-dataset cache: a round trip keeps everything, a damaged entry is rebuilt."""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp

from recbench import Dataset, DatasetCard, DatasetSpec, FeatureTable, LoadContext
from recbench import datacache
from recbench.cli.main import main


def _dataset() -> Dataset:
    ds = Dataset.from_arrays("toy", np.array(["b", "a", "c", "a"], dtype=object),
                             np.array([10, 20, 10, 30]), rating=np.array([1.0, 2.0, 3.0, 4.0]),
                             timestamp=np.array([5, 6, 7, 8]),
                             metadata={"basket": np.array([1, 1, 2, 3]), "note": "hello"})
    return ds.replace(
        item_features=FeatureTable(sp.csr_matrix(np.eye(3, 2)), ("x", "y")),
        user_features=FeatureTable(np.arange(6.0).reshape(3, 2), ("p", "q")))


def test_round_trip_keeps_everything(tmp_path):
    ds = _dataset()
    datacache.write(ds, tmp_path / "toy.npz")
    back = datacache.read(tmp_path / "toy.npz")
    assert back.interactions.fingerprint == ds.interactions.fingerprint
    assert list(back.user_ids) == ["a", "b", "c"] and list(back.item_ids) == [10, 20, 30]
    assert (back.item_features.values != ds.item_features.values).nnz == 0
    np.testing.assert_array_equal(back.user_features.values, ds.user_features.values)
    np.testing.assert_array_equal(back.metadata["basket"], [1, 1, 2, 3])
    assert back.metadata["note"] == "hello" and back.checksum == ds.checksum


def test_second_load_skips_parsing_and_damage_is_rebuilt(tmp_path):
    calls = []

    def load(cfg, ctx):
        calls.append(1)
        return _dataset()

    spec = DatasetSpec("toy", load, DatasetCard("toy"), fingerprint=lambda cfg, ctx: "v1")
    ctx = LoadContext(None, tmp_path)
    a = datacache.load(spec, spec.config(), ctx)
    b = datacache.load(spec, spec.config(), ctx)
    assert len(calls) == 1 and a.interactions.fingerprint == b.interactions.fingerprint
    (entry,) = (tmp_path / "datasets").glob("toy-*.npz")
    entry.write_bytes(b"not an npz")
    datacache.load(spec, spec.config(), ctx)
    assert len(calls) == 2
    assert datacache.read(entry).interactions.fingerprint == a.interactions.fingerprint


def test_datasets_cli_info_and_errors(capsys):
    assert main(["datasets", "info", "synthetic", "-o", "n_users=50", "-o", "n_items=40",
                 "-o", "mean_per_user=6"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["users"] == 50 and info["interactions"] > 250 and "price" in info["item_features"]
    assert main(["datasets", "info", "synthetc"]) == 1
    assert "Did you mean 'synthetic'" in capsys.readouterr().err
    assert main(["datasets", "list"]) == 0
    assert "synthetic" in capsys.readouterr().out
