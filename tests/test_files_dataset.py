"""The ``files`` dataset: your own CSV/TSV/Parquet/RecBole file, its features, and clear errors."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recbench import LoadContext
from recbench.cli.main import main
from recbench.config import Experiment, canonical_json, from_mapping, to_dict
from recbench.errors import ConfigError, DataError
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RunOptions, Runner, open_dataset
from recbench_builtin.datasets import files
from recbench_builtin.datasets.files import FilesConfig

SHARED = Path(os.environ.get("RECBENCH_TEST_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = SHARED / "ml-100k" / "u.data"


def ctx(tmp_path: Path) -> LoadContext:
    return LoadContext(tmp_path, tmp_path / "cache")


def load(tmp_path: Path, **config):
    return files.load(from_mapping(FilesConfig, config), ctx(tmp_path))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def original(ds):
    """(user, item) original ids per interaction row."""
    x = ds.interactions
    return list(zip(ds.user_ids[x.user].tolist(), ds.item_ids[x.item].tolist()))


RATINGS_CSV = ("user_id,item_id,rating,timestamp\n"
               "u2,10,4,881250949\n"
               "u1,10,3.5,881250950\n"
               "\n"
               "u1,7,5,881250951\n"
               "u3,12,1,881250952\n")


# ---------------------------------------------------------------- round trips


def test_csv_round_trip(tmp_path):
    write(tmp_path / "ratings.csv", RATINGS_CSV)
    ds = load(tmp_path, path="ratings.csv", rating="rating", timestamp="timestamp")
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (3, 3, 4)
    assert ds.user_ids.tolist() == ["u1", "u2", "u3"]  # strings, sorted
    assert ds.item_ids.dtype == np.int64 and ds.item_ids.tolist() == [7, 10, 12]  # plain integers
    assert original(ds) == [("u2", 10), ("u1", 10), ("u1", 7), ("u3", 12)]  # file order kept
    assert x.rating.tolist() == [4.0, 3.5, 5.0, 1.0]
    assert x.timestamp.tolist() == [881250949, 881250950, 881250951, 881250952]
    assert ds.name == "files" and ds.checksum.startswith("sha256:")
    assert ds.metadata["blank_lines"] == 1 and ds.metadata["format"] == "csv"
    assert ds.metadata["columns"] == {"user": "user_id", "item": "item_id", "rating": "rating",
                                      "timestamp": "timestamp"}
    # rating/timestamp unset: the columns literally named so are used; "" ignores them
    default = load(tmp_path, path=str(tmp_path / "ratings.csv"))
    assert default.interactions.rating.tolist() == x.rating.tolist()
    assert default.metadata["columns"] == ds.metadata["columns"]
    implicit = load(tmp_path, path=str(tmp_path / "ratings.csv"), rating="", timestamp="")
    assert implicit.interactions.rating is None and implicit.interactions.timestamp is None


def test_fingerprint_follows_content_and_cache_serves_later_loads(tmp_path):
    path = write(tmp_path / "ratings.csv", RATINGS_CSV)
    cfg = from_mapping(FilesConfig, {"path": "ratings.csv", "rating": "rating"})
    spec = files.SPECS[0]
    first = spec.fingerprint(cfg, ctx(tmp_path))
    assert first == spec.fingerprint(cfg, ctx(tmp_path))
    a = open_dataset(spec, cfg, ctx(tmp_path))
    b = open_dataset(spec, cfg, ctx(tmp_path))  # from the binary cache
    assert a.checksum == b.checksum and original(a) == original(b)
    assert list(tmp_path.joinpath("cache", "datasets").glob("files-*.npz"))
    write(path, RATINGS_CSV + "u4,13,2,881250953\n")
    assert spec.fingerprint(cfg, ctx(tmp_path)) != first
    c = open_dataset(spec, cfg, ctx(tmp_path))
    assert len(c.interactions) == 5 and c.checksum != a.checksum


def test_relative_path_without_data_dir_uses_the_current_directory(tmp_path, monkeypatch):
    write(tmp_path / "ratings.csv", RATINGS_CSV)
    monkeypatch.chdir(tmp_path)
    ds = files.load(FilesConfig(path="ratings.csv"), LoadContext(None, tmp_path / "cache"))
    assert len(ds.interactions) == 4


def test_tsv_and_sniffed_separators(tmp_path):
    write(tmp_path / "r.tsv", RATINGS_CSV.replace(",", "\t"))
    ds = load(tmp_path, path="r.tsv", rating="rating")
    assert original(ds)[0] == ("u2", 10) and ds.metadata["sep"] == "\t"
    write(tmp_path / "r.csv", RATINGS_CSV.replace(",", ";"))  # a European spreadsheet export
    assert load(tmp_path, path="r.csv", rating="rating").interactions.rating.tolist()[1] == 3.5
    write(tmp_path / "r.dat", RATINGS_CSV.replace(",", "::"))  # MovieLens-1M style, explicit sep
    ds = load(tmp_path, path="r.dat", sep="::", rating="rating")
    assert original(ds)[2] == ("u1", 7)
    write(tmp_path / "q.csv", 'user_id,item_id,title\n1,2,"Toy Story, the"\n1,3,"multi\nline"\n')
    ds = load(tmp_path, path="q.csv")
    assert original(ds) == [(1, 2), (1, 3)]


def test_inter_round_trip_with_recbole_features(tmp_path):
    write(tmp_path / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          "1\ti1\t4.0\t881250949.0\n"
          "2\ti2\t3.0\t881250950.7\n"
          "2\ti3\t5.0\t881250951\n")
    write(tmp_path / "toy.item", "item_id:token\tgenre:token_seq\tprice:float\tbrand:token\t"
          "title:token_seq\tvec:float_seq\n"
          "i2\tAction Comedy\t2.5\tacme\tThe Second\t1 2\n"
          "i1\tComedy\t\tzeta\tThe First\t3 4\n"
          "i9\tDrama\t9.0\tacme\tUnrelated\t5 6\n")  # i9 never interacted: ignored; i3 missing: zeros
    write(tmp_path / "toy.user", "user_id:token\tage:float\tgender:token\n1\t24\tM\n2\t53\tF\n")
    ds = load(tmp_path, path="toy.inter", item_features="toy.item", user_features="toy.user",
              max_categories=3)
    x = ds.interactions
    assert ds.metadata["format"] == "inter"
    assert x.rating.tolist() == [4.0, 3.0, 5.0]  # RecBole's own rating/timestamp picked up
    assert x.timestamp.tolist() == [881250949, 881250950, 881250951]  # seconds, fraction dropped
    assert ds.user_ids.tolist() == [1, 2] and ds.item_ids.tolist() == ["i1", "i2", "i3"]
    f = ds.item_features
    assert f.columns == ("genre=Action", "genre=Comedy", "genre=Drama", "price", "brand=acme",
                         "brand=zeta")
    v = np.asarray(f.values)
    assert v.tolist() == [[0, 1, 0, 0, 0, 1],  # i1: price missing -> 0
                          [1, 1, 0, 2.5, 1, 0],  # i2
                          [0, 0, 0, 0, 0, 0]]  # i3: not in the file -> zeros
    meta = ds.metadata["item_features"]
    assert meta["missing"] == 1 and meta["ignored_rows"] == 1
    assert meta["filled_with_zero"] == {"price": 1}
    assert set(meta["skipped"]) == {"title", "vec"}  # 4 tokens > max_categories; float_seq
    assert "max_categories" in meta["skipped"]["title"]
    u = ds.user_features
    assert u.columns == ("age", "gender=F", "gender=M")
    assert np.asarray(u.values).tolist() == [[24, 0, 1], [53, 1, 0]]
    # RecBole's rating column can be switched off
    assert load(tmp_path, path="toy.inter", rating="").interactions.rating is None
    # features and their metadata survive the binary cache
    cfg = from_mapping(FilesConfig, {"path": "toy.inter", "item_features": "toy.item",
                                     "user_features": "toy.user", "max_categories": 3})
    first, cached = (open_dataset(files.SPECS[0], cfg, ctx(tmp_path)) for _ in range(2))
    assert cached.item_features.columns == f.columns
    assert np.array_equal(np.asarray(cached.item_features.values), v)
    assert cached.metadata["item_features"] == meta and cached.checksum == ds.checksum


def test_list_columns_become_multi_hot():
    table = files.Table(Path("items.parquet"), pd.DataFrame({0: [1, 2, 3], 1: [["a", "b"], [],
                                                                                None]}),
                         ["item_id", "tags"], fmt="parquet")
    m, columns, reason, _ = files._feature_columns(table, 1, max_categories=10)
    assert reason is None and columns == ["tags=a", "tags=b"]
    assert m.toarray().tolist() == [[1, 1], [0, 0], [0, 0]]


def test_csv_feature_files_infer_numeric_and_text_columns(tmp_path):
    write(tmp_path / "r.csv", RATINGS_CSV)
    write(tmp_path / "items.csv", "sku,price,colour,description\n"
          "7,1.5,red,a\n10,2,blue,b\n12,,red,c\n99,4,green,d\n")
    ds = load(tmp_path, path="r.csv", item_features="items.csv", item_key="sku", max_categories=3)
    f = ds.item_features
    assert f.columns == ("price", "colour=blue", "colour=green", "colour=red")
    assert np.asarray(f.values).tolist() == [[1.5, 0, 0, 1], [2, 1, 0, 0], [0, 0, 0, 1]]
    assert ds.metadata["item_features"]["skipped"] == {
        "description": "4 distinct values > max_categories = 3"}
    # the key defaults to the interaction file's item column
    write(tmp_path / "items2.csv", "item_id,price\n7,1\n10,2\n12,3\n")
    ds = load(tmp_path, path="r.csv", item_features="items2.csv")
    assert np.asarray(ds.item_features.values)[:, 0].tolist() == [1, 2, 3]


@pytest.mark.shared_data("ml-100k/u.data")
def test_headerless_ml100k_excerpt_by_position_and_by_names(tmp_path):
    if not ML100K.is_file():
        pytest.fail(f"test data missing: {ML100K} (the shared ML-100K copy)")
    lines = ML100K.read_text(encoding="latin-1").splitlines()[:2000]
    write(tmp_path / "u2000.tsv", "\n".join(lines) + "\n")
    expected = np.array([[int(v) for v in line.split("\t")] for line in lines])
    ds = load(tmp_path, path="u2000.tsv", format="tsv", header=False, user="0", item=1,
              rating="2", timestamp=3)
    x = ds.interactions
    assert len(x) == 2000 and x.n_users == len(np.unique(expected[:, 0]))
    assert (ds.user_ids[x.user] == expected[:, 0]).all()
    assert (ds.item_ids[x.item] == expected[:, 1]).all()
    assert (x.rating == expected[:, 2]).all() and (x.timestamp == expected[:, 3]).all()
    write(tmp_path / "r.csv", RATINGS_CSV)
    renamed = load(tmp_path, path="r.csv", names=["who", "what", "stars", "when"], user="who",
                   item="what")
    assert original(renamed)[0] == ("u2", 10)  # names replace a header's names
    named = load(tmp_path, path="u2000.tsv", format="tsv", header=False,
                 names=["user", "item", "rating", "ts"], user="user", item="item",
                 rating="rating", timestamp="ts")
    assert named.checksum == ds.checksum and original(named) == original(ds)
    # header = true on a headerless file: the error says so
    with pytest.raises(DataError, match="looks like data, not a header: set header = false"):
        load(tmp_path, path="u2000.tsv", format="tsv")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_parquet(tmp_path, monkeypatch):
    frame = pd.DataFrame({"user_id": ["a", "b", "a"], "item_id": [3, 1, 2],
                          "rating": [1.0, 2.0, 3.0],
                          "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])})
    path = tmp_path / "r.parquet"
    engine = next((e for e in ("pyarrow", "fastparquet") if importlib.util.find_spec(e)), None)
    if engine is not None:
        frame.to_parquet(path, engine=engine)
        ds = load(tmp_path, path="r.parquet", rating="rating", timestamp="when")
        assert original(ds) == [("a", 3), ("b", 1), ("a", 2)]
        assert ds.interactions.timestamp.tolist() == [1577836800, 1577923200, 1578009600]
        assert ds.metadata["format"] == "parquet"
        bad = frame.assign(rating=[1.0, np.nan, 3.0])
        bad.to_parquet(tmp_path / "nan.parquet", engine=engine)
        with pytest.raises(DataError, match=r"nan\.parquet, row 2, column 'rating'"):
            load(tmp_path, path="nan.parquet", rating="rating")
    else:
        path.write_bytes(b"PAR1 not really")
    for name in ("pyarrow", "fastparquet"):
        monkeypatch.setitem(sys.modules, name, None)  # as if neither engine were installed
    with pytest.raises(DataError, match=r"r\.parquet: reading Parquet needs pyarrow.*pip install "
                                        r"pyarrow"):
        load(tmp_path, path="r.parquet")


def test_compressed_and_iso_dates(tmp_path):
    import gzip

    (tmp_path / "r.csv.gz").write_bytes(gzip.compress(
        b"user_id,item_id,when\n1,2,2020-01-01T00:00:00Z\n1,3,2020-01-02 00:00:00\n"))
    ds = load(tmp_path, path="r.csv.gz", timestamp="when")
    assert ds.interactions.timestamp.tolist() == [1577836800, 1577923200]


def test_duplicates_kept_by_default_counted_in_metadata(tmp_path):
    write(tmp_path / "d.csv", "user_id,item_id,timestamp\n1,2,5\n1,3,5\n1,2,5\n1,2,6\n")
    ds = load(tmp_path, path="d.csv", timestamp="timestamp")
    assert len(ds.interactions) == 4 and ds.metadata["duplicate_rows"] == 1
    no_time = load(tmp_path, path="d.csv", timestamp="")
    assert no_time.metadata["duplicate_rows"] == 2  # (user, item) when there is no timestamp


def test_config_validation_and_round_trip():
    cfg = from_mapping(FilesConfig, {"path": "r.csv", "user": 0, "names": ["a", "b"],
                                     "duplicates": "error"})
    assert from_mapping(FilesConfig, json.loads(canonical_json(cfg))) == cfg
    assert to_dict(cfg)["names"] == ["a", "b"]
    with pytest.raises(ConfigError, match="path is required"):
        from_mapping(FilesConfig, {})
    with pytest.raises(ConfigError, match="Did you mean 'timestamp'"):
        from_mapping(FilesConfig, {"path": "r.csv", "timestmap": "ts"})
    with pytest.raises(ConfigError, match="'parquet'"):
        from_mapping(FilesConfig, {"path": "r.csv", "format": "parquett"})
    with pytest.raises(ConfigError, match="same column"):
        from_mapping(FilesConfig, {"path": "r.csv", "user": "x", "item": "x"})


# ---------------------------------------------------------------- bad input

HEADER = "user_id,item_id,rating,timestamp\n"
BAD = {
    # name: (file text, extra config, expected message parts)
    "non_numeric_rating": (HEADER + "1,2,4,100\n1,3,good,101\n1,4,bad,102\n", {},
                           ["line 3", "column 'rating'", "'good' is not a number", "2 such lines"]),
    "nan_rating": (HEADER + "1,2,4,100\n1,3,NaN,101\n", {},
                   ["line 3", "column 'rating'", "rating is missing"]),
    "empty_rating": (HEADER + "1,2,,100\n", {}, ["line 2", "rating is missing"]),
    "empty_user": (HEADER + "1,2,4,100\n,3,4,101\n", {}, ["line 3", "column 'user_id'", "empty"]),
    "nan_item": (HEADER + "1,2,4,100\n1,nan,4,101\n", {}, ["line 3", "column 'item_id'"]),
    "negative_timestamp": (HEADER + "1,2,4,100\n1,3,4,-5\n", {},
                           ["line 3", "column 'timestamp'", "negative timestamp -5"]),
    "milliseconds": (HEADER + "1,2,4,881250949000\n", {},
                     ["line 2", "column 'timestamp'", "beyond the year 2100", "milliseconds"]),
    "bad_timestamp": (HEADER + "1,2,4,yesterday\n", {}, ["line 2", "'yesterday'", "ISO 8601"]),
    "missing_column": ("user_id,item_id,ratings,timestamp\n1,2,4,100\n", {},
                       ["column 'rating'", "'user_id', 'item_id', 'ratings', 'timestamp'",
                        "Did you mean 'ratings'"]),
    "position_out_of_range": (HEADER + "1,2,4,100\n", {"item": 9}, ["item = 9", "4 columns"]),
    "too_many_fields": (HEADER + "1,2,4,100\n1,3,4,101,extra\n", {},
                        ["line 3", "5 fields", "header names 4"]),
    "duplicates": (HEADER + "1,2,4,100\n1,3,4,100\n1,2,5,100\n", {"duplicates": "error"},
                   ["lines 2 and 4", "appears twice", 'duplicates = "keep"']),
    "empty_file": ("", {}, ["is empty"]),
    "header_only": (HEADER, {}, ["header (line 1) but no data lines"]),
    "blank_only": (HEADER + "\n,,,\n", {}, ["no data lines"]),
    "rating_out_of_range": (HEADER + "1,2,4,100\n1,3,0,101\n1,4,6,102\n",
                            {"rating_range": [1, 5]},
                            ["line 3", "column 'rating'", "rating 0 is outside rating_range [1, 5]",
                             "2 such lines"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_line_or_column(tmp_path, case):
    text, extra, parts = BAD[case]
    write(tmp_path / f"{case}.csv", text)
    config = {"path": f"{case}.csv", "rating": "rating", "timestamp": "timestamp", **extra}
    with pytest.raises(DataError) as err:
        load(tmp_path, **config)
    message = str(err.value)
    assert f"{case}.csv" in message
    for part in parts:
        assert part in message, (part, message)
    assert "\n" not in message


def test_columns_named_rating_and_timestamp_are_used_unless_set_to_empty(tmp_path):
    write(tmp_path / "r.tsv", "user_id\titem_id\ttimestamp\trating\n1\t2\t100\t4\n2\t2\t101\t3\n")
    ds = load(tmp_path, path="r.tsv")
    assert ds.interactions.rating.tolist() == [4.0, 3.0]
    assert ds.interactions.timestamp.tolist() == [100, 101]
    assert ds.metadata["columns"] == {"user": "user_id", "item": "item_id", "rating": "rating",
                                      "timestamp": "timestamp"}
    implicit = load(tmp_path, path="r.tsv", rating="")
    assert implicit.interactions.rating is None and implicit.interactions.timestamp is not None
    # a column literally named `rating` that is also the user column is not taken twice
    write(tmp_path / "odd.csv", "rating,item_id\n1,2\n")
    assert load(tmp_path, path="odd.csv", user="rating").interactions.rating is None


def test_rating_range_is_validated(tmp_path):
    write(tmp_path / "r.csv", RATINGS_CSV)
    assert len(load(tmp_path, path="r.csv", rating_range=[1, 5]).interactions) == 4
    with pytest.raises(ConfigError, match="lo <= hi"):
        from_mapping(FilesConfig, {"path": "r.csv", "rating_range": [5, 1]})
    with pytest.raises(ConfigError, match="lo <= hi"):
        from_mapping(FilesConfig, {"path": "r.csv", "rating_range": [1, 3, 5]})
    with pytest.raises(DataError, match="rating_range is set but no rating column"):
        load(tmp_path, path="r.csv", rating_range=[1, 5], user="user_id", item="item_id",
             names=("user_id", "item_id", "stars", "ts"))


def test_unterminated_last_line_warns_possibly_truncated(tmp_path):
    write(tmp_path / "cut.csv", "user_id,item_id,rating\n1,2,4\n1,3,5")  # cut from "1,3,50"?
    with pytest.warns(files.PossiblyTruncatedWarning, match=r"cut\.csv, line 3: the last line has "
                      r"no line end.*'1,3,5'"):
        ds = load(tmp_path, path="cut.csv")
    assert len(ds.interactions) == 2 and ds.metadata["unterminated_last_line"] is True
    write(tmp_path / "whole.csv", "user_id,item_id,rating\r\n1,2,4\r\n")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "unterminated_last_line" not in load(tmp_path, path="whole.csv").metadata


def test_missing_file_lists_the_directory(tmp_path):
    write(tmp_path / "ratings.csv", RATINGS_CSV)
    with pytest.raises(DataError) as err:
        load(tmp_path, path="rating.csv")
    message = str(err.value)
    assert "rating.csv: no such file" in message and "holds: ratings.csv" in message
    assert "Did you mean 'ratings.csv'" in message and "data directory" in message
    with pytest.raises(DataError, match="does not exist either"):
        load(tmp_path, path="nowhere/ratings.csv")
    with pytest.raises(DataError, match="is a directory"):
        load(tmp_path, path=".")
    with pytest.raises(DataError, match=r"items\.csv: no such file \(config item_features"):
        load(tmp_path, path="ratings.csv", item_features="items.csv")
    with pytest.raises(DataError, match="no such file"):  # the cache key needs the file too
        files.fingerprint(FilesConfig(path="gone.csv"), ctx(tmp_path))


def test_headerless_file_error_explains_positional_names(tmp_path):
    write(tmp_path / "u.data", "1\t2\t3\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data: column 'user_id'.*'0', '1', '2', '3'.*header "
                                        r"= false"):
        load(tmp_path, path="u.data", header=False)


@pytest.mark.parametrize("text, key, parts", [
    ("item_id,price\n7,1\n10,2\n7,3\n", None, ["items.csv, lines 2 and 4", "two rows"]),
    ("sku,price\n7,1\n", None, ["column 'item_id'", "item_key", "'sku'"]),
    ("sku,price\n70,1\n71,2\n", "sku", ["none of the 3 items", "item_key"]),
    ("item_id,price\n7,1\n,2\n", None, ["items.csv, line 3", "column 'item_id'"]),
    ("item_id\n7\n10\n", None, ["no usable feature column"]),
])
def test_bad_feature_files(tmp_path, text, key, parts):
    write(tmp_path / "r.csv", RATINGS_CSV)
    write(tmp_path / "items.csv", text)
    config = {"path": "r.csv", "item_features": "items.csv"}
    if key is not None:
        config["item_key"] = key
    with pytest.raises(DataError) as err:
        load(tmp_path, **config)
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


def test_recbole_float_feature_with_text_is_an_error(tmp_path):
    write(tmp_path / "a.inter", "user_id:token\titem_id:token\n1\t7\n")
    write(tmp_path / "a.item", "item_id:token\tprice:float\n7\tcheap\n")
    with pytest.raises(DataError, match=r"a\.item, line 2, column 'price': 'cheap' is not a number"):
        load(tmp_path, path="a.inter", item_features="a.item")


# ---------------------------------------------------------------- CLI and runner


def test_cli_datasets_info(tmp_path, capsys):
    path = write(tmp_path / "ratings.csv", RATINGS_CSV)
    assert main(["datasets", "info", "files", "-o", f"path={path}", "-o", "rating=rating"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["users"], info["items"], info["interactions"]) == (3, 3, 4)
    assert info["ratings"] == [1.0, 3.5, 4.0, 5.0]
    assert info["pairs"] == 4 and info["density"] == pytest.approx(4 / 9)
    # density counts distinct (user, item) pairs: a repeated pair counts once
    repeated = write(tmp_path / "again.csv", "user_id,item_id\n1,2\n1,2\n1,2\n2,3\n")
    assert main(["datasets", "info", "files", "-o", f"path={repeated}"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["interactions"], info["pairs"]) == (4, 2) and info["density"] == 2 / 4
    assert main(["datasets", "info", "files", "-o", f"path={path}", "-o", "rating=ratng"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ratings.csv" in err and "'rating'" in err
    assert "\n" not in err


def _interactions_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    popular = 1.0 / np.arange(1, 41)
    rows = ["user,item,stars,time"]
    for u in range(60):
        items = rng.choice(40, 10, replace=False, p=popular / popular.sum())
        rows += [f"user{u},item{i},{rng.integers(1, 6)},{1_600_000_000 + 60 * k}"
                 for k, i in enumerate(items)]
    return write(path, "\n".join(rows) + "\n")


def test_runner_end_to_end_on_a_csv(tmp_path):
    csv_path = _interactions_csv(tmp_path / "shop.csv")
    exp = from_mapping(Experiment, {
        "datasets": [{"name": "files", "config": {"path": str(csv_path), "user": "user",
                                                  "item": "item", "rating": "stars",
                                                  "timestamp": "time"}}],
        "models": [{"name": "most-popular"}],
        "protocol": {"metrics": ["ndcg", "recall"], "ks": [5]}})
    registry = Registry.build(load_plugins(allow=set()))
    records = Runner(exp, registry, RunOptions(tmp_path / "results",
                                               cache_dir=tmp_path / "cache")).run()
    assert [r["status"] for r in records] == ["ok"], records
    record = records[0]
    assert record["dataset"] == "files" and 0 < record["metrics"]["ndcg@5"] <= 1
    assert record["provenance"]["dataset_checksum"].startswith("sha256:")
