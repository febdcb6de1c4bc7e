"""The Amazon sequential datasets: the shared copies' published counts, the timestamp rule
(position within the user's line), the attribute table, bad lines, and a verified download from a
local HTTP server."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from recbench.api import DataError, LoadContext
from recbench_builtin.datasets import amazon
from recbench_builtin.datasets.amazon import AmazonConfig


def load(name: str, data_dir: Path | None, tmp_path: Path, **cfg):
    return amazon._load(amazon.SOURCES[name], AmazonConfig(**cfg), LoadContext(data_dir, tmp_path))


@pytest.mark.shared_data("amazon-beauty-5core-s3rec/Beauty.txt")
def test_shared_beauty_has_the_published_counts(shared_data, tmp_path, registry):
    root = shared_data("amazon-beauty-5core-s3rec/Beauty.txt")
    spec = registry.dataset("amazon-beauty")
    ds = spec.load(AmazonConfig(), LoadContext(root, tmp_path))
    x = ds.interactions
    assert (x.n_users, x.n_items, len(x)) == (22_363, 12_101, 198_502)
    assert ds.checksum == "sha256:" + amazon.SOURCES["amazon-beauty"].sha256
    assert x.user_counts.min() >= 5
    # Timestamps are positions: 0..n-1 within each user, in the file's order.
    first = (root / "amazon-beauty-5core-s3rec/Beauty.txt").read_text().split("\n", 1)[0].split()
    ptr, items = x.sequences()
    u = int(np.flatnonzero(ds.user_ids == int(first[0]))[0])
    assert ds.item_ids[items[ptr[u]:ptr[u + 1]]].tolist() == [int(i) for i in first[1:]]
    assert sorted(x.timestamp[x.user == u].tolist()) == list(range(len(first) - 1))
    f = ds.item_features
    assert f.values.shape == (12_101, 637) and f.values.nnz > 12_101
    assert spec.card.citation and "research use" in spec.card.license
    assert spec.fingerprint(AmazonConfig(), LoadContext(root, tmp_path)) != \
        spec.fingerprint(AmazonConfig(attributes=False), LoadContext(root, tmp_path))


def test_lines_layout_positions_attributes_and_bad_lines(tmp_path):
    folder = tmp_path / "amazon-beauty-5core-s3rec"
    folder.mkdir()
    (folder / "Beauty.txt").write_text("2 30 10 20\n1 10 40\n")
    (folder / "Beauty_item2attributes.json").write_text('{"10": [5, 7], "30": [7], "99": [1]}')
    ds = load("amazon-beauty", tmp_path, tmp_path)
    x = ds.interactions
    assert ds.user_ids.tolist() == [1, 2] and ds.item_ids.tolist() == [10, 20, 30, 40]
    ptr, items = x.sequences()
    assert ds.item_ids[items[ptr[1]:ptr[2]]].tolist() == [30, 10, 20]
    assert x.timestamp.tolist() == [0, 1, 2, 0, 1]
    # Item 99 has no interactions and is dropped; attribute 1 stays a (zero) column.
    assert ds.item_features.columns == ("attr_1", "attr_5", "attr_7")
    assert ds.item_features.values.toarray().tolist() == [[0, 1, 1], [0, 0, 0], [0, 0, 1],
                                                         [0, 0, 0]]
    assert load("amazon-beauty", tmp_path, tmp_path, attributes=False).item_features is None
    for text, match in (("1 10 x\n", "line 1: 'x' is not an integer"),
                        ("1 10\n2\n", "line 2: user 2 has no items"),
                        ("1 10\n1 20\n", "line 2: user 1 already appeared on line 1")):
        (folder / "Beauty.txt").write_text(text)
        with pytest.raises(DataError, match=match):
            load("amazon-beauty", tmp_path, tmp_path)


def test_pairs_layout(tmp_path):
    (tmp_path / "Video.txt").write_text("1 5\n2 7\n1 3\n1 5\n")
    x = load("amazon-games", None, tmp_path, path=str(tmp_path)).interactions
    assert x.timestamp.tolist() == [0, 0, 1, 2]
    (tmp_path / "Video.txt").write_text("1 5 9\n")
    with pytest.raises(DataError, match="line 1: 3 fields, expected 2"):
        load("amazon-games", None, tmp_path, path=str(tmp_path / "Video.txt"))


@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (the files' names are their URLs' paths)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_is_verified_and_cached(tmp_path, http_folder, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root, url = http_folder
    body = b"1 10 20 30\n2 20 10\n"
    (root / "Beauty.txt").write_bytes(body)
    good = dataclasses.replace(amazon.SOURCES["amazon-beauty"], url=f"{url}/Beauty.txt",
                               sha256=hashlib.sha256(body).hexdigest())
    cache = tmp_path / "cache"
    ds = amazon._load(good, AmazonConfig(), LoadContext(None, cache))
    assert len(ds.interactions) == 5
    saved = cache / "downloads" / good.folder / "Beauty.txt"
    assert saved.read_bytes() == body
    (root / "Beauty.txt").unlink()  # offline from here on: the verified copy is enough
    assert amazon._load(good, AmazonConfig(), LoadContext(None, cache)).checksum == ds.checksum
    (root / "Other.txt").write_bytes(b"1 10\n")
    bad = dataclasses.replace(good, url=f"{url}/Other.txt")
    with pytest.raises(DataError, match="sha256"):
        amazon._load(bad, AmazonConfig(), LoadContext(None, tmp_path / "cache2"))
    assert not (tmp_path / "cache2" / "downloads" / good.folder / "Beauty.txt").exists()
