"""Splits as files: a published split (ML-100K u1) loads exactly, an exported split reloads equal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recbench import Dataset
from recbench.config import Component, Experiment, Preprocess, Protocol, from_mapping, to_dict
from recbench.errors import ConfigError, DataError
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner
from recbench.splitfiles import export
from recbench_builtin.splitting.given import GivenConfig, given

ML100K = Path(os.environ.get("RECBENCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared"
                             / "datasets")) / "ml-100k"
REGISTRY = Registry.build(load_plugins(allow=set()))


def runner(tmp_path, split: Component, dataset: Component) -> Runner:
    exp = Experiment(datasets=(dataset,), models=(Component("most-popular"),),
                     protocol=Protocol(split=split, preprocess=Preprocess(dedup="none")))
    return Runner(exp, REGISTRY, RunOptions(tmp_path / "results", data_dir=ML100K.parent))


@pytest.mark.shared_data("ml-100k")
def test_published_ml100k_u1_split(tmp_path):
    split = Component("given", {"train": str(ML100K / "u1.base"), "test": str(ML100K / "u1.test")})
    r = runner(tmp_path, split, Component("ml-100k"))
    ds = r.load_dataset(r.plan_.datasets[0])
    s = r.make_split(ds, 0)
    assert (len(s.train), len(s.test), s.valid) == (80_000, 20_000, None)
    assert s.protocol["splitter"] == "given"
    first = np.loadtxt(ML100K / "u1.test", dtype=np.int64, max_rows=1)
    assert ds.user_ids[s.test.user[0]] == first[0] and ds.item_ids[s.test.item[0]] == first[1]
    assert s.test.rating[0] == first[2]
    [record] = r.run()
    assert record["status"] == "ok" and record["counts"]["users_evaluated"] == 459


def test_export_then_given_reproduces_the_split(tmp_path):
    synthetic = Component("synthetic", {"n_users": 60, "n_items": 40, "mean_per_user": 8})
    r = runner(tmp_path, Component("ratio"), synthetic)
    ds = r.load_dataset(r.plan_.datasets[0])
    original = r.make_split(ds, 3)
    paths = export(ds, original, tmp_path / "split")
    assert [p.name for p in paths] == ["train.tsv", "valid.tsv", "test.tsv"]
    cfg = GivenConfig(*(str(p) for p in (paths[0], paths[2], paths[1])))
    again = given(ds, cfg, np.random.default_rng(0))
    for part in ("train", "valid", "test"):
        assert getattr(again, part).fingerprint == getattr(original, part).fingerprint


def test_bad_files_name_file_and_line(tmp_path):
    synthetic = Component("synthetic", {"n_users": 60, "n_items": 40, "mean_per_user": 8})
    r = runner(tmp_path, Component("ratio"), synthetic)
    ds = r.load_dataset(r.plan_.datasets[0])
    good = f"{ds.user_ids[0]}\t{ds.item_ids[ds.interactions.item[0]]}\n"
    (tmp_path / "train.tsv").write_text(good + "999999\t1\n")
    (tmp_path / "test.tsv").write_text(good + "abc\t1\n")
    with pytest.raises(DataError, match=r"train.tsv, line 2: user '999999' item '1' is not in"):
        given(ds, GivenConfig(str(tmp_path / "train.tsv"), str(tmp_path / "test.tsv")), None)
    with pytest.raises(DataError, match=r"test.tsv, line 2: user id 'abc' is not an integer"):
        given(ds, GivenConfig(str(tmp_path / "test.tsv"), str(tmp_path / "test.tsv")), None)
    with pytest.raises(ConfigError, match="set train and test"):
        from_mapping(GivenConfig, {"train": "a"})


def test_cli_export_round_trip(tmp_path, capsys):
    from recbench.cli.main import main

    exp = tmp_path / "exp.toml"
    exp.write_text('seeds = [4]\n[[datasets]]\nname = "synthetic"\n'
                   'config = {n_users = 50, n_items = 40, mean_per_user = 8}\n')
    assert main(["split", "export", str(exp), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    assert out.out.split() == [str(tmp_path / "out" / f"{p}.tsv") for p in ("train", "valid", "test")]
    fingerprint = out.err.split()[-1]
    reload = tmp_path / "again.toml"
    reload.write_text(exp.read_text() + '[protocol.split]\nname = "given"\nconfig = {train = "'
                      f'{tmp_path}/out/train.tsv", valid = "{tmp_path}/out/valid.tsv", test = "'
                      f'{tmp_path}/out/test.tsv"}}\n')
    assert main(["split", "export", str(reload), "--out", str(tmp_path / "out2")]) == 0
    assert capsys.readouterr().err.split()[-1] == fingerprint
    assert main(["split", "export", str(exp), "--out", str(tmp_path / "x"), "--dataset", "nope"]) == 1


def test_exclude_unknowns_drops_test_rows_unseen_in_training(tmp_path):
    # users a, b, c; items 1, 2, 3. Train lacks item 3 and user c.
    ds = Dataset.from_arrays("toy", np.array(["a", "a", "b", "b", "b", "c"], dtype=object),
                             np.array([1, 2, 1, 2, 3, 2]))
    (tmp_path / "train.tsv").write_text("a\t1\nb\t2\n")
    (tmp_path / "valid.tsv").write_text("b\t3\n")
    (tmp_path / "test.tsv").write_text("a\t2\nb\t3\nc\t2\n")
    files = {k: str(tmp_path / f"{k}.tsv") for k in ("train", "valid", "test")}
    kept = given(ds, GivenConfig(**files), None)
    assert (len(kept.test), len(kept.valid)) == (3, 1)  # default: every listed row, as before
    assert kept.protocol["exclude_unknowns"] is False and "excluded_unknowns" not in kept.protocol
    cfg = from_mapping(GivenConfig, {**files, "exclude_unknowns": True})
    s = given(ds, cfg, None)
    # Cornac's exclude_unknowns: (b, 3) has an unseen item, (c, 2) an unseen user
    assert [(ds.user_ids[u], ds.item_ids[i]) for u, i in zip(s.test.user, s.test.item)] == [("a", 2)]
    assert len(s.valid) == 0 and len(s.train) == 2
    assert s.protocol["exclude_unknowns"] is True
    assert s.protocol["excluded_unknowns"] == {"valid": 1, "test": 2}
    assert to_dict(cfg)["exclude_unknowns"] is True  # in the splitter config, so in the trial key
    (tmp_path / "test.tsv").write_text("c\t2\n")
    with pytest.raises(DataError, match="exclude_unknowns dropped every row"):
        given(ds, cfg, None)


def test_given_files_may_be_compressed_and_carry_a_bom(tmp_path):
    import gzip

    ds = Dataset.from_arrays("toy", np.array([1, 1, 2]), np.array([10, 20, 10]))
    (tmp_path / "train.tsv.gz").write_bytes(gzip.compress("\ufeff1\t10\n2\t10\n".encode()))
    (tmp_path / "test.tsv").write_bytes("1\t20\n".encode("utf-16"))
    s = given(ds, GivenConfig(str(tmp_path / "train.tsv.gz"), str(tmp_path / "test.tsv")), None)
    assert (len(s.train), len(s.test)) == (2, 1)


def test_changed_split_files_are_new_trials_not_old_numbers(tmp_path):
    synthetic = Component("synthetic", {"n_users": 60, "n_items": 40, "mean_per_user": 8})
    r = runner(tmp_path, Component("ratio", {"ratios": [0.8, 0.2]}), synthetic)
    ds = r.load_dataset(r.plan_.datasets[0])
    export(ds, r.make_split(ds, 0), tmp_path / "split")
    split = Component("given", {"train": str(tmp_path / "split" / "train.tsv"),
                                "test": str(tmp_path / "split" / "test.tsv")})
    [first] = runner(tmp_path, split, synthetic).run()
    export(ds, r.make_split(ds, 1), tmp_path / "split")  # same paths, other rows
    [second] = runner(tmp_path, split, synthetic).run()
    assert first["identity"]["split_inputs"] != second["identity"]["split_inputs"]
    assert first["key"] != second["key"]
    assert first["provenance"]["split_fingerprint"] != second["provenance"]["split_fingerprint"]


def test_given_files_per_fold_average_into_one_leaderboard_row(tmp_path):
    from recbench.report import leaderboard

    synthetic = Component("synthetic", {"n_users": 60, "n_items": 40, "mean_per_user": 8})
    r = runner(tmp_path, Component("ratio", {"ratios": [0.8, 0.2]}), synthetic)
    ds = r.load_dataset(r.plan_.datasets[0])
    for fold in (1, 2):
        export(ds, r.make_split(ds, fold), tmp_path / f"split{fold}")
    split = Component("given", {"train": str(tmp_path / "split{fold}" / "train.tsv"),
                                "test": str(tmp_path / "split{fold}" / "test.tsv")})
    exp = Experiment(datasets=(synthetic,), models=(Component("most-popular"),),
                     protocol=Protocol(split=split, folds=(1, 2), preprocess=Preprocess(dedup="none")))
    records = Runner(exp, REGISTRY, RunOptions(tmp_path / "results")).run()
    assert [r["identity"]["split_inputs"] for r in records][0] != records[1]["identity"]["split_inputs"]
    board = leaderboard(records)
    assert len(board) == 1 and board.at[0, "folds"] == 2 and board.at[0, "runs"] == 2
