"""The dataset I/O kit (recbench.fileio): one digest, one reader, one decoding rule, one write."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import sys
import zipfile

import numpy as np
import pytest

from recbench import DatasetCard, DatasetSpec, LoadContext, datacache, fileio
from recbench.errors import DataError


def test_digest_file_and_the_remembered_sha256(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert fileio.digest_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert fileio.digest_file(path, "md5") == hashlib.md5(b"abc" * 1000).hexdigest()
    assert fileio.file_sha256(path) == fileio.digest_file(path)
    path.write_bytes(b"changed")  # new size and mtime: hashed again, never a stale digest
    assert fileio.file_sha256(path) == hashlib.sha256(b"changed").hexdigest()


def test_decompressed_digest_equals_the_plain_files(tmp_path):
    body = b"1\t10\t5\t881250949\n" * 50
    (tmp_path / "r.dat").write_bytes(body)
    (tmp_path / "r.dat.gz").write_bytes(gzip.compress(body))
    plain = fileio.file_sha256(tmp_path / "r.dat")
    assert fileio.file_sha256(tmp_path / "r.dat.gz", decompressed=True) == plain
    assert fileio.file_sha256(tmp_path / "r.dat.gz") != plain  # the archive's own bytes
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"bad\.gz: cannot decompress"):
        fileio.file_sha256(tmp_path / "bad.gz", decompressed=True)


def test_read_bytes_decompresses_by_suffix(tmp_path):
    body = b"user,item\n1,2\n"
    for name, packed in (("a.csv", body), ("a.csv.gz", gzip.compress(body)),
                         ("a.csv.bz2", bz2.compress(body)), ("a.csv.xz", lzma.compress(body))):
        (tmp_path / name).write_bytes(packed)
        assert fileio.read_bytes(tmp_path / name) == body, name
    with zipfile.ZipFile(tmp_path / "one.zip", "w") as z:
        z.writestr("dir/a.csv", body)
    assert fileio.read_bytes(tmp_path / "one.zip") == body
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("a.csv", body)
        z.writestr("b.csv", body)
    with pytest.raises(DataError, match=r"two\.zip: a \.zip must hold exactly one file.*a\.csv, b\.csv"):
        fileio.read_bytes(tmp_path / "two.zip")
    (tmp_path / "cut.xz").write_bytes(lzma.compress(body)[:10])
    with pytest.raises(DataError, match=r"cut\.xz: cannot decompress"):
        fileio.read_bytes(tmp_path / "cut.xz")


@pytest.mark.parametrize("raw, codec", [
    (b"\xff\xfe" + "élan".encode("utf-16-le"), "utf-16"),
    (b"\xfe\xff" + "élan".encode("utf-16-be"), "utf-16"),
    (b"\xef\xbb\xbf" + "élan".encode(), "utf-8-sig"),
    ("élan".encode(), "utf-8"),
    ("élan".encode("latin-1"), "latin-1"),
])
def test_one_decoding_rule(raw, codec):
    assert fileio.text_encoding(raw) == codec
    assert fileio.decode_text(raw) == "élan"  # the mark, if any, is dropped


def test_a_broken_utf16_file_is_a_data_error():
    with pytest.raises(DataError, match="UTF-16 byte-order mark"):
        fileio.decode_text(b"\xff\xfe" + b"a\x00b")  # odd byte count after the mark


def test_missing_values_are_one_set_and_keep_na():
    assert {"", "nan", "NaN", "null", "None"} <= fileio.MISSING_VALUES
    assert "NA" not in fileio.MISSING_VALUES  # an id or a title, not a gap


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    fileio.atomic_write(path, lambda f: f.write("first"))
    assert path.read_text() == "first"

    def fails(f):
        f.write("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(path, fails)
    assert path.read_text() == "first" and os.listdir(path.parent) == ["out.txt"]


def test_parse_cache_follows_the_loaders_code(tmp_path, monkeypatch):
    """One invalidation rule for every dataset: editing the parser's module re-parses."""
    pkg = tmp_path / "toyloaders"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_helper.py").write_text("OFFSET = 0\n")
    (pkg / "loader.py").write_text(
        "import numpy as np\nfrom recbench import Dataset\nfrom ._helper import OFFSET\n"
        "CALLS = []\n"
        "def load(cfg, ctx):\n"
        "    CALLS.append(1)\n"
        "    return Dataset.from_arrays('toy', np.array([1, 2]), np.array([3 + OFFSET, 4]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toyloaders.loader as loader

    try:
        spec = DatasetSpec("toy", loader.load, DatasetCard("toy"), fingerprint=lambda c, x: "v1")
        ctx = LoadContext(None, tmp_path / "cache")
        assert {p.name for p in datacache._module_files(spec.load)} == {"loader.py", "_helper.py"}
        datacache.load(spec, spec.config(), ctx)
        datacache.load(spec, spec.config(), ctx)
        assert len(loader.CALLS) == 1  # the second load came from the cache
        (pkg / "_helper.py").write_text("OFFSET = 10  # a parser fix\n")
        datacache.load(spec, spec.config(), ctx)
        assert len(loader.CALLS) == 2  # the helper module changed: parsed again
        assert len(list((tmp_path / "cache" / "datasets").glob("toy-*.npz"))) == 2
    finally:
        for name in [m for m in sys.modules if m.startswith("toyloaders")]:
            del sys.modules[name]


def test_downloads_never_leave_a_partial_file(tmp_path):
    from recbench.download import fetch

    (tmp_path / "src.bin").write_bytes(b"payload")
    url = (tmp_path / "src.bin").as_uri()
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(url, "0" * 64, tmp_path / "d")
    assert os.listdir(tmp_path / "d") == []
    good = hashlib.sha256(b"payload").hexdigest()
    assert fetch(url, good, tmp_path / "d").read_bytes() == b"payload"
    assert np.array_equal(sorted(os.listdir(tmp_path / "d")), ["src.bin"])
