"""MovieLens plugin and the download helpers: real copies, every file format, bad input, downloads.

Real data comes from ``../shared/datasets`` (or ``RECBENCH_TEST_DATA``); the download path is tested
against a local HTTP server on 127.0.0.1 serving archives the tests build. No test touches the
internet: ``RECBENCH_CACHE_DIR`` points at a temporary directory, so downloads land in its
``downloads/`` folder (:func:`recbench.download.download_dir`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from recbench import LoadContext
from recbench.config import ConfigError, canonical_json, from_mapping
from recbench.datacache import default_cache_dir
from recbench.download import digest_file, download_dir, extract, fetch
from recbench.errors import DataError
from recbench_builtin.datasets import movielens as ml

SHARED = Path(os.environ.get("RECBENCH_TEST_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = SHARED / "ml-100k"
ML1M = SHARED / "ml-1m"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Downloads go to a temporary cache; local servers are reached without any proxy."""
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RECBENCH_DATA_DIR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def load(name: str, *, path: Path | None = None, data_dir: Path | None = None,
         cache: Path | None = None):
    cfg = ml.MovieLensConfig(path=None if path is None else str(path))
    return SPECS[name].load(cfg, LoadContext(data_dir, cache or default_cache_dir()))


def data_home() -> Path:
    """Where a load without a data directory downloads to: the test's cache dir/downloads."""
    return download_dir(LoadContext(None, default_cache_dir()))


SPECS = {s.name: s for s in ml.SPECS}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------- tiny releases in the real formats

ITEM_100K = ("{id}|{title}|{date}||http://us.imdb.com/x|" + "|".join(["{g}"] * 19))


def write_100k(d: Path, data: str | None = None, *, item: str | None = None,
               user: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "u.data").write_text(data if data is not None else
                              "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t891717742\n"
                              "3\t30\t1\t878887116\n")
    flags = lambda on: "|".join("1" if i in on else "0" for i in range(19))  # noqa: E731
    items = item if item is not None else "\n".join([
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags({3, 4, 5})}",
        f"20|Misérables, Les (1995)|01-Jan-1995||http://x|{flags({8})}",
        f"30|unknown|||http://x|{flags({0})}",
    ]) + "\n"
    (d / "u.item").write_bytes(items.encode("latin-1"))
    (d / "u.user").write_text(user if user is not None else
                              "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|T8H1N\n")
    return d


def write_1m(d: Path, *, timestamps: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rows = [(1, 1193, 5, 978300760), (1, 661, 3, 978302109), (2, 1193, 4, 978298413),
            (6040, 2, 1, 956703977)]
    (d / ("ratings.dat" if timestamps else "ratings_uir.dat")).write_text("".join(
        f"{u}::{i}::{r}::{t}\n" if timestamps else f"{u}::{i}::{r}\n" for u, i, r, t in rows))
    (d / "movies.dat").write_bytes(
        "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "3::Kådisbellan (1993)::Comedy\n".encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n"
                                 "6040::M::25::6::11106\n")
    return d


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data("ml-100k")
def test_real_ml100k_from_the_shared_copy():
    start = time.perf_counter()
    ds = load("ml-100k", data_dir=SHARED)
    seconds = time.perf_counter() - start
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (943, 1682, 100_000)
    assert seconds < 1.0, f"cold parse of ML-100K took {seconds:.2f} s"
    assert x.timestamp is not None and x.timestamp.min() == 874724710
    assert sorted(np.unique(x.rating)) == [1, 2, 3, 4, 5]
    genres = [c for c in ds.item_features.columns if c.startswith("genre_")]
    assert len(genres) == 19 and genres[0] == "genre_unknown" and "genre_Film-Noir" in genres
    assert ds.item_features.values.shape == (1682, 21)
    multi = ds.item_features.values[:, :19]
    assert set(np.unique(multi)) == {0.0, 1.0} and (multi.sum(1) > 1).any()  # multi-hot
    year = ds.item_features.values[:, ds.item_features.columns.index("year")]
    assert 1920 <= year.min() and year.max() == 1998
    assert ds.user_features is not None and ds.user_features.values.shape == (943, 24)
    assert ds.user_features.columns[:2] == ("age", "gender_M")
    assert ds.checksum == "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    assert ds.item_info["title"][0] == "Toy Story (1995)"
    assert len(ds.item_info["title"]) == 1682 and ds.metadata["timestamps"] is True
    assert list(ds.item_ids[:3]) == [1, 2, 3] and list(ds.user_ids[-1:]) == [943]
    # The same release through path= and through --data-dir pointing at the folder itself.
    assert load("ml-100k", path=ML100K).checksum == ds.checksum
    assert load("ml-100k", data_dir=ML100K).interactions.fingerprint == x.fingerprint


@pytest.mark.shared_data("ml-100k")
def test_cli_datasets_info_reports_ml100k_counts(capsys):
    from recbench.cli.main import main

    assert main(["datasets", "info", "ml-100k", "--data-dir", str(SHARED)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["users"], out["items"], out["interactions"]) == (943, 1682, 100_000)
    assert "Harper" in out["citation"] and out["source"].endswith("/ml-100k.zip")


@pytest.mark.slow
@pytest.mark.shared_data("ml-1m")
def test_real_ml1m_from_the_shared_copy_without_timestamps():
    ds = load("ml-1m", data_dir=SHARED)
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (6040, 3706, 1_000_209)
    assert x.timestamp is None and ds.metadata["timestamps"] is False
    assert ds.checksum == "sha256:2dad134c8b493373beed8d2a42e18ec2a93606fd957bd76c0bfbdef5c514b985"
    assert abs(float(x.rating.mean()) - 3.581564) < 1e-5
    assert ds.user_features.values.shape == (6040, 24)
    assert len([c for c in ds.item_features.columns if c.startswith("genre_")]) == 18


@pytest.mark.shared_data("ml-latest-small")
def test_real_ml_latest_small_csv_layout():
    ds = load("ml-latest-small", data_dir=SHARED)
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (610, 9724, 100_836)
    assert sorted(np.unique(x.rating))[:2] == [0.5, 1.0] and ds.user_features is None
    assert "genre_IMAX" in ds.item_features.columns
    assert not any("no genres" in c for c in ds.item_features.columns)


# ---------------------------------------------------------------- the formats, on tiny files


def test_ml1m_format_small_file(tmp_path):
    ds = ml.load_directory("ml-1m", write_1m(tmp_path / "ml-1m"))
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (3, 3, 4)
    assert list(ds.user_ids) == [1, 2, 6040] and list(ds.item_ids) == [2, 661, 1193]
    assert list(x.timestamp) == [978300760, 978302109, 978298413, 956703977]
    assert ds.item_info["title"].tolist() == ["Jumanji (1995)", "James and the Giant Peach (1996)",
                                        "One Flew Over the Cuckoo's Nest (1975)"]
    f = ds.item_features
    assert f.columns == ("genre_Adventure", "genre_Animation", "genre_Children's", "genre_Comedy",
                         "genre_Drama", "genre_Fantasy", "genre_Musical", "year", "year_missing")
    assert f.values[0].tolist() == [1, 0, 1, 0, 0, 1, 0, 1995, 0]
    u = ds.user_features
    row = dict(zip(u.columns, u.values[2].tolist()))  # user 6040: M, age 25, occupation 6, zip 1...
    assert row["age"] == 25 and row["gender_M"] == 1 and row["zip_prefix"] == 1
    assert row["occupation_doctor/health care"] == 1 and sum(u.values[2, 2:-1]) == 1
    assert dict(zip(u.columns, u.values[0].tolist()))["gender_M"] == 0


def test_ml1m_without_timestamps_and_gzip(tmp_path):
    d = write_1m(tmp_path / "ml-1m", timestamps=False)
    raw = (d / "ratings_uir.dat").read_bytes()
    (d / "ratings_uir.dat.gz").write_bytes(__import__("gzip").compress(raw))
    (d / "ratings_uir.dat").unlink()
    ds = load("ml-1m", path=d)
    assert ds.interactions.timestamp is None and len(ds.interactions) == 4
    assert ds.checksum == "sha256:" + hashlib.sha256(raw).hexdigest()  # content, not the gzip


def test_ml100k_format_small_file_latin1_and_missing_year(tmp_path):
    ds = load("ml-100k", path=write_100k(tmp_path / "x"))
    assert ds.item_info["title"].tolist() == ["Toy Story (1995)", "Misérables, Les (1995)", "unknown"]
    f = ds.item_features
    assert f.values[:, f.columns.index("year")].tolist() == [1995, 1995, 1995]  # median fill
    assert f.values[:, f.columns.index("year_missing")].tolist() == [0, 0, 1]
    u = ds.user_features
    assert u.values[:, u.columns.index("zip_prefix")].tolist() == [8, 9, -1]


def test_ml10m_and_csv_formats(tmp_path):
    d = tmp_path / "ml-10M100K"
    d.mkdir()
    (d / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n"
                                   "2::122::0.5::868245777\n")
    (d / "movies.dat").write_text("122::Boomerang (1992)::Comedy|Romance\n"
                                  "185::Net, The (1995)::Action|Crime|Thriller\n", "utf-8")
    ds = load("ml-10m", data_dir=tmp_path)  # found under the archive's folder name
    assert ds.interactions.rating.tolist() == [5.0, 4.5, 0.5]
    assert ds.metadata["genres"] == ["Action", "Comedy", "Crime", "Romance", "Thriller"]

    c = tmp_path / "ml-25m"
    c.mkdir()
    (c / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
                                   "1,2,3.5,964981247\n7,2,0.5,1100000000\n")
    (c / "movies.csv").write_text('movieId,title,genres\n1,"Toy Story, The Return (1995)",'
                                  'Adventure|IMAX\n2,Untitled,(no genres listed)\n'
                                  '3,Unrated (2001),Drama\n', "utf-8")
    ds = load("ml-25m", data_dir=tmp_path)
    assert ds.item_info["title"].tolist() == ["Toy Story, The Return (1995)", "Untitled"]
    # The genre vocabulary is the release's (all listed movies), so it does not depend on which
    # movies happen to be rated; "(no genres listed)" is no genre.
    assert ds.item_features.columns == ("genre_Adventure", "genre_Drama", "genre_IMAX", "year",
                                        "year_missing")
    assert ds.item_features.values.tolist() == [[1, 0, 1, 1995, 0], [0, 0, 0, 1995, 1]]

    # The one decoding rule (recbench.fileio.text_encoding) for movies.csv too: a UTF-8 mark or
    # UTF-16 is read, not taken into the header.
    for codec in ("utf-8-sig", "utf-16"):
        (c / "movies.csv").write_text("movieId,title,genres\n1,Amélie (2001),Comedy\n"
                                      "2,Untitled,(no genres listed)\n", codec)
        ds = load("ml-25m", data_dir=tmp_path)
        assert ds.item_info["title"].tolist() == ["Amélie (2001)", "Untitled"], codec


# ---------------------------------------------------------------- bad input

GOOD = "1\t10\t5\t881250949\n1\t20\t3\t881250950\n"


@pytest.mark.parametrize("data, match", [
    (GOOD + "2\t10\tfive\t891717742\n", r"u\.data, line 3, column 'rating': 'five' is not a number"),
    (GOOD + "2\t10\t4\n", r"u\.data, line 3: expected 4 fields .* found 3"),
    (GOOD + "2\t10\t4\t891717742\t9\n", r"u\.data, line 3: expected 4 fields .* found 5"),
    (GOOD + "2\tx\t4\t891717742\n", r"line 3, column 'item': 'x' is not an integer"),
    (GOOD + "2\t10\tnan\t891717742\n", r"line 3, column 'rating': the rating is missing or NaN"),
    (GOOD + "\n2\t10\t9\t891717742\n", r"line 4, column 'rating': rating 9 is outside .* 1-5"),
    (GOOD + "2\t10\t4\t-5\n", r"line 3, column 'timestamp': negative timestamp -5"),
    (GOOD + "2\t10\t4\t1700000000000\n", r"line 3, column 'timestamp': .* in the future"),
    (GOOD + "2\t10\t4\t881250949.5\n", r"line 3, column 'timestamp': '881250949.5' is not an "
                                      r"integer"),
    (GOOD + "2\t99999999999999999999\t4\t1\n", r"line 3, column 'item': .* not an integer"),
    (GOOD + "1\t10\t4\t891717742\n", r"u\.data, lines 1 and 3: user 1 rated movie 10 twice"),
    ("", r"u\.data is empty"),
    ("\n\n", r"u\.data is empty"),
    (GOOD + "2\t99\t4\t891717742\n", r"line 3, column 'item': movie 99 is rated but missing from "
                                     r".*u\.item"),
])
def test_bad_ratings_name_file_line_and_column(tmp_path, data, match):
    d = write_100k(tmp_path / "ml-100k", data)
    with pytest.raises(DataError, match=match):
        load("ml-100k", path=d)


def test_bad_side_files(tmp_path):
    d = write_100k(tmp_path / "a", user="1|24|M|technician|85711\n2|53|X|other|94043\n")
    with pytest.raises(DataError, match=r"u\.user, line 2, column 'gender': 'X' is not M or F"):
        load("ml-100k", path=d)
    d = write_100k(tmp_path / "b", user="1|24|M|astronaut|85711\n")
    (d / "u.occupation").write_text("other\ntechnician\nwriter\n")
    with pytest.raises(DataError, match=r"u\.user, line 1, column 'occupation': unknown"):
        load("ml-100k", path=d)
    d = write_100k(tmp_path / "c", item="10|T (1995)|01-Jan-1995||u|" + "|".join("0" * 18) + "\n")
    with pytest.raises(DataError, match=r"u\.item, line 1: expected 24 fields"):
        load("ml-100k", path=d)
    d = write_1m(tmp_path / "d")
    (d / "ratings.dat").write_text("1::1193::5::978300760\n1::1193::4::978300761\n")
    with pytest.raises(DataError, match=r"ratings\.dat, lines 1 and 2: user 1 rated movie 1193"):
        load("ml-1m", path=d)
    (d / "ratings.dat").write_text("1::1193::5::978300760\n")
    (d / "movies.dat").write_text("1193::A (1975)::Drama\n1193::B (1975)::Drama\n")
    with pytest.raises(DataError, match=r"movies\.dat, line 2: movie id 1193 appears twice"):
        load("ml-1m", path=d)
    c = tmp_path / "ml-25m"
    c.mkdir()
    (c / "ratings.csv").write_text("1,1,4.0,964982703\n")
    (c / "movies.csv").write_text("movieId,title,genres\n1,A (1995),Drama\n")
    with pytest.raises(DataError, match=r"ratings\.csv, line 1: expected the header"):
        load("ml-25m", path=c)


def test_missing_file_in_a_local_directory(tmp_path):
    d = write_100k(tmp_path / "ml-100k")
    (d / "u.item").unlink()
    with pytest.raises(DataError, match=r"lacks u\.item.*needs u\.data, u\.item, u\.user"):
        load("ml-100k", path=d)
    with pytest.raises(DataError, match=r"lacks u\.item"):  # an incomplete --data-dir/<name> too
        load("ml-100k", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"is not a directory"):
        load("ml-100k", path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="path must name a directory"):
        from_mapping(ml.MovieLensConfig, {"path": " "})


@pytest.mark.shared_data("ml-latest-small")
def test_data_dir_itself_holding_another_release_is_not_used(monkeypatch):
    def no_download(release, ctx):
        raise DataError(f"would download {release.name}")

    monkeypatch.setattr(ml, "_download", no_download)
    with pytest.raises(DataError, match=r"not in --data-dir .* would download ml-25m"):
        load("ml-25m", data_dir=SHARED / "ml-latest-small")  # its README names ml-latest-small


# ---------------------------------------------------------------- specs, config, fingerprint


def test_specs_cards_and_checksums_are_recorded():
    names = [s.name for s in ml.SPECS]
    assert names == ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"]
    for spec in ml.SPECS:
        assert spec.card.source == f"https://files.grouplens.org/datasets/movielens/{spec.name}.zip"
        assert "Harper" in spec.card.citation and "10.1145/2827872" in spec.card.citation
        assert spec.card.license and spec.card.description and spec.fingerprint is not None
        archive = ml.ARCHIVES[spec.name]
        assert archive.sha256 is not None and len(archive.sha256) == 64
        assert archive.md5 is None or len(archive.md5) == 32
    cfg = from_mapping(ml.MovieLensConfig, {"path": "/data/ml-1m"})
    assert from_mapping(ml.MovieLensConfig, json.loads(canonical_json(cfg))) == cfg


def test_registered_through_the_builtin_plugin(registry):
    assert {"ml-100k", "ml-1m", "ml-32m"} <= set(registry.names("dataset"))


def test_fingerprint_follows_every_parsed_file(tmp_path):
    d = write_100k(tmp_path / "ml-100k")
    spec, cfg, ctx = SPECS["ml-100k"], ml.MovieLensConfig(str(d)), LoadContext(None, d)
    first = spec.fingerprint(cfg, ctx)
    assert spec.fingerprint(cfg, ctx) == first
    time.sleep(0.01)
    (d / "u.item").write_bytes((d / "u.item").read_bytes().replace(b"Toy", b"Boy"))
    assert spec.fingerprint(cfg, ctx) != first


# ---------------------------------------------------------------- downloads from a local server


class _Handler(BaseHTTPRequestHandler):
    timeout = 10

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, mode = route
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate":  # promise len(body) bytes, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Server:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes, self.httpd.hits = {}, []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.running = True

    def serve(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.httpd.routes[path] = (body, mode)
        return self.url + path

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def release_zip(tmp_path: Path, folder: str = "ml-100k") -> bytes:
    src = write_100k(tmp_path / "src")
    return zip_bytes({f"{folder}/{p.name}": p.read_bytes() for p in sorted(src.iterdir())})


def test_download_verifies_caches_and_never_downloads_again(tmp_path, server, monkeypatch):
    body = release_zip(tmp_path)
    url = server.serve("/ml-100k.zip", body)
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k", ml.Archive(
        url, sha256=hashlib.sha256(body).hexdigest(), md5=hashlib.md5(body).hexdigest()))
    ds = load("ml-100k")
    assert len(ds.interactions) == 4
    assert server.hits == ["/ml-100k.zip"]
    cache = data_home() / "movielens"
    assert (cache / "ml-100k.zip").read_bytes() == body
    assert not [p for p in files_under(data_home()) if p.name.endswith((".part", ".tmp"))]
    server.stop()  # offline from here on: the cache must be enough
    again = load("ml-100k")
    assert again.checksum == ds.checksum and server.hits == ["/ml-100k.zip"]
    # A local copy of the same release gets the same checksum as the download.
    assert load("ml-100k", path=tmp_path / "src").checksum == ds.checksum


def test_download_with_only_an_md5_recorded(tmp_path, server, monkeypatch):
    body = release_zip(tmp_path)
    url = server.serve("/ml-100k.zip", body)
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k", ml.Archive(url, md5=hashlib.md5(body).hexdigest()))
    assert len(load("ml-100k").interactions) == 4


def test_corrupted_download_is_refused_with_both_digests(tmp_path, server, monkeypatch):
    body = release_zip(tmp_path)
    corrupted = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
    url = server.serve("/ml-100k.zip", corrupted)
    expected = hashlib.sha256(body).hexdigest()
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k", ml.Archive(url, sha256=expected))
    with pytest.raises(DataError) as err:
        load("ml-100k")
    message = str(err.value)
    assert "checksum mismatch" in message and url in message
    assert expected in message and hashlib.sha256(corrupted).hexdigest() in message
    assert "nothing cached" in message
    assert files_under(data_home()) == []


def test_truncated_download_is_refused_and_not_cached(tmp_path, server, monkeypatch):
    body = release_zip(tmp_path)
    url = server.serve("/ml-100k.zip", body, mode="truncate")
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k",
                        ml.Archive(url, sha256=hashlib.sha256(body).hexdigest()))
    with pytest.raises(DataError, match="truncated"):
        load("ml-100k")
    assert files_under(data_home()) == []


def test_http_errors_and_unrecorded_checksums(tmp_path, server, monkeypatch):
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(server.url + "/missing.zip", "0" * 64, tmp_path / "c")
    assert files_under(tmp_path / "c") == []
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k", ml.Archive(server.url + "/ml-100k.zip"))
    with pytest.raises(DataError, match=r"no recorded checksum .* pass path="):
        load("ml-100k")
    assert server.hits == ["/missing.zip"]  # the release without a checksum was never requested
    with pytest.raises(DataError, match="without a recorded checksum"):
        fetch(server.url + "/x.zip", None, tmp_path)


def test_fetch_uses_a_verified_file_without_network_and_replaces_a_bad_one(tmp_path, server):
    body = b"payload" * 1000
    good = hashlib.sha256(body).hexdigest()
    (tmp_path / "f.bin").write_bytes(body)
    assert fetch("http://127.0.0.1:9/f.bin", good, tmp_path) == tmp_path / "f.bin"  # port 9: no one
    (tmp_path / "f.bin").write_bytes(b"damaged")
    stale, live = tmp_path / ".f.bin.killed.tmp", tmp_path / ".f.bin.other.tmp"
    stale.write_bytes(b"left by a killed download")
    live.write_bytes(b"another process, still downloading")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    url = server.serve("/f.bin", body)
    seen = []
    path = fetch(url, f"sha256:{good}", tmp_path, progress=lambda n, total: seen.append((n, total)))
    assert path.read_bytes() == body and seen[-1] == (len(body), len(body))
    assert not stale.exists() and live.exists()
    assert digest_file(path, "md5") == hashlib.md5(body).hexdigest()
    with pytest.raises(DataError, match="is not 64 hex digits"):
        fetch(url, "abc", tmp_path)


def test_zip_escaping_the_destination_is_refused(tmp_path, server, monkeypatch):
    evil = zip_bytes({"ml-100k/u.data": b"1\t1\t1\t1\n", "../evil": b"gotcha"})
    with open(tmp_path / "evil.zip", "wb") as f:
        f.write(evil)
    with pytest.raises(DataError, match=r"unsafe: member '\.\./evil' points outside"):
        extract(tmp_path / "evil.zip", tmp_path / "out" / "x")
    assert not (tmp_path / "out" / "evil").exists() and files_under(tmp_path / "out") == []
    # The same archive served as a release: refused, nothing extracted.
    url = server.serve("/ml-100k.zip", evil)
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k",
                        ml.Archive(url, sha256=hashlib.sha256(evil).hexdigest()))
    with pytest.raises(DataError, match="unsafe"):
        load("ml-100k")
    assert not (data_home() / "evil").exists() and not (data_home() / "movielens" / "evil").exists()
    assert not (data_home() / "movielens" / "ml-100k").exists()


def test_unsafe_members_absolute_paths_and_links(tmp_path):
    (tmp_path / "abs.zip").write_bytes(zip_bytes({"/etc/evil": b"x"}))
    with pytest.raises(DataError, match="absolute path"):
        extract(tmp_path / "abs.zip", tmp_path / "a")
    for name, kind, target in [("up.tar.gz", tarfile.SYMTYPE, "../../outside"),
                               ("abs.tar.gz", tarfile.SYMTYPE, "/etc/passwd"),
                               ("hard.tar.gz", tarfile.LNKTYPE, "../outside")]:
        with tarfile.open(tmp_path / name, "w:gz") as tf:
            info = tarfile.TarInfo("d/link")
            info.type, info.linkname = kind, target
            tf.addfile(info)
        with pytest.raises(DataError, match="outside the extraction directory"):
            extract(tmp_path / name, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not [p for p in tmp_path.iterdir()
                                                   if p.name.startswith(".t.")]


def test_extract_zip_and_tar_atomically(tmp_path):
    (tmp_path / "ok.zip").write_bytes(zip_bytes({"r/a.txt": b"A", "r/sub/b.txt": b"B"}))
    out = extract(tmp_path / "ok.zip", tmp_path / "z")
    assert (out / "r" / "sub" / "b.txt").read_bytes() == b"B"
    assert extract(tmp_path / "ok.zip", tmp_path / "z") == out  # already there: unchanged
    with tarfile.open(tmp_path / "ok.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("r/a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"T"))
        link = tarfile.TarInfo("r/link")
        link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
        tf.addfile(link)
    out = extract(tmp_path / "ok.tar.gz", tmp_path / "z", overwrite=True)
    assert (out / "r" / "a.txt").read_bytes() == b"T" and (out / "r" / "link").read_bytes() == b"T"
    assert not (out / "r" / "sub").exists()
    (tmp_path / "bad.zip").write_bytes((tmp_path / "ok.zip").read_bytes()[:40])
    with pytest.raises(DataError, match="neither a zip nor a tar|corrupted or truncated"):
        extract(tmp_path / "bad.zip", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_download_dir_is_the_load_contexts_choice(monkeypatch, tmp_path):
    # No global data home: the harness's LoadContext decides, environment variables do not.
    monkeypatch.setenv("RECBENCH_DATA_DIR", str(tmp_path / "ignored"))
    assert download_dir(LoadContext(tmp_path / "d", tmp_path / "c")) == tmp_path / "d"
    assert download_dir(LoadContext(None, tmp_path / "c")) == tmp_path / "c" / "downloads"
    with pytest.raises(DataError, match="needs dest_dir"):
        fetch("http://127.0.0.1:9/x.zip", "0" * 64)


def test_download_into_the_data_dir_when_the_release_is_not_there(tmp_path, server, monkeypatch):
    body = release_zip(tmp_path)
    url = server.serve("/ml-100k.zip", body)
    monkeypatch.setitem(ml.ARCHIVES, "ml-100k", ml.Archive(url, sha256=hashlib.sha256(body).hexdigest()))
    local = tmp_path / "local"
    local.mkdir()
    assert len(load("ml-100k", data_dir=local).interactions) == 4
    assert (local / "movielens" / "ml-100k.zip").read_bytes() == body
    assert files_under(data_home()) == []  # nothing under the cache
    server.stop()
    assert len(load("ml-100k", data_dir=local).interactions) == 4  # found there, offline
