"""UCI Online Retail: the embedded derived dataset, and the full loader that reproduces it.

The embedded file (``recbench_builtin/datasets/data/online_retail.npz``) is built by
``scripts/build_online_retail.py`` from ``../shared/datasets/uci-online-retail/online_retail.csv.gz``
with the same functions the ``online-retail-full`` loader runs; the equality test below proves the
derivation. Real data from ``RECBENCH_TEST_DATA`` (default ``../shared/datasets``); never skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import io
import os
import re
import time
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recbench import Dataset, LoadContext
from recbench.errors import DataError
from recbench.fileio import file_sha256
from recbench.runner import open_dataset
from recbench_builtin.datasets import online_retail as orx

DATA = Path(os.environ.get("RECBENCH_TEST_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets"))
RAW = DATA / "uci-online-retail" / "online_retail.csv.gz"

# The numbers recorded in datasets/online-retail.md.
N_USERS, N_ITEMS, N_ROWS, N_BASKETS = 4074, 3145, 384338, 17996
SPAN = (1291191960, 1323435000)  # 2010-12-01 08:26:00 .. 2011-12-09 12:50:00 (naive, read as UTC)

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD = ("536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,"
        "United Kingdom\n")


@pytest.fixture(scope="module")
def embedded() -> Dataset:
    return orx.load_embedded(None, None)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Dataset:
    cfg = orx.FullConfig()
    return orx.load_full(cfg, LoadContext(DATA, tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def raw_lines() -> pd.DataFrame:
    return orx.read_raw(RAW)


# ---------------------------------------------------------------- embedded dataset


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_shipped_file_matches_recorded_checksums(embedded):
    data = resources.files("recbench_builtin.datasets").joinpath(orx.EMBEDDED_RESOURCE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == orx.EMBEDDED_SHA256
    assert len(data) < 4 * 2**20  # "a few MB at most"
    assert embedded.checksum == f"sha256:{orx.EMBEDDED_SHA256}"
    assert embedded.metadata["derivation"] == {
        "script": "scripts/build_online_retail.py", "input_sha256": orx.EMBEDDED_INPUT_SHA256,
        "output_sha256": orx.EMBEDDED_SHA256}
    assert file_sha256(RAW) == orx.EMBEDDED_INPUT_SHA256


def test_embedded_loads_fast_with_the_stated_counts(embedded):
    start = time.perf_counter()
    orx.load_embedded(None, None)
    assert time.perf_counter() - start < 1.0
    x = embedded.interactions
    assert (x.n_users, x.n_items, len(x)) == (N_USERS, N_ITEMS, N_ROWS)
    assert len(np.unique(embedded.interactions.extra["basket"])) == N_BASKETS
    assert (int(x.timestamp.min()), int(x.timestamp.max())) == SPAN
    assert x.rating is None and x.timestamp.dtype == np.int64
    assert embedded.user_ids.dtype == np.int64 and np.all(np.diff(embedded.user_ids) > 0)
    assert embedded.item_ids.dtype.kind == "U" and np.all(embedded.item_ids[1:] > embedded.item_ids[:-1])


def test_every_user_and_item_has_five_interactions_and_five_partners(embedded):
    x = embedded.interactions
    assert x.user_counts.min() >= 5 and x.item_counts.min() >= 5
    pairs = x.csr  # distinct (user, item) pairs
    assert np.diff(pairs.indptr).min() >= 5
    assert np.bincount(pairs.indices, minlength=x.n_items).min() >= 5


def test_features_aligned_and_finite(embedded):
    x, f, u = embedded.interactions, embedded.item_features, embedded.user_features
    # discount and sales are computed over the test period too: side information, not features.
    assert f.columns == ("price",) and f.values.shape == (x.n_items, 1)
    assert np.isfinite(f.values).all()
    price = f.values[:, 0]
    discount, sales = embedded.item_info["discount"], embedded.item_info["sales"]
    assert (price > 0).all() and ((discount >= 0) & (discount < 1)).all()
    assert (sales >= np.log1p(5)).all()  # every item sold >= 5 units (5 customers, quantity >= 1)
    assert u.values.shape[0] == x.n_users and np.isfinite(u.values).all()
    assert (u.values.sum(axis=1) == 1).all() and all(c.startswith("country=") for c in u.columns)
    assert np.array_equal(np.asarray(u.columns)[u.values.argmax(1)],
                          np.char.add("country=", embedded.user_info["country"]))
    text = embedded.item_info["text"]
    assert text.shape == (x.n_items,) and all(t.strip() for t in text)
    assert x.extra["basket"].shape == (len(x),) and x.extra["quantity"].shape == (len(x),)
    assert (x.extra["quantity"] > 0).all()
    # One row per (customer, invoice, product); rows in (customer, time) order.
    triples = np.stack([x.user.astype(np.int64), x.extra["basket"], x.item.astype(np.int64)], axis=1)
    assert len(np.unique(triples, axis=0)) == len(x)
    assert np.all(np.diff(x.user) >= 0)
    same_user = np.diff(x.user) == 0
    assert np.all(np.diff(x.timestamp)[same_user] >= 0)


def test_known_item_and_user_values(embedded):
    """Spot checks against the raw file: one product, one customer."""
    items = list(embedded.item_ids)
    i = items.index("85123A")
    assert embedded.item_info["text"][i] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert "15056bl" not in items and "15056BL" in items  # StockCode case folded
    u = list(embedded.user_ids).index(12347)
    assert embedded.user_info["country"][u] == "Iceland"


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_no_cancellations_or_non_products(embedded, raw_lines):
    codes = embedded.item_ids
    assert all(re.fullmatch(orx.PRODUCT_CODE, c) for c in codes)
    assert not {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "D", "CRUK", "C2", "PADS",
                "S", "B"} & set(codes)
    invoices = raw_lines["InvoiceNo"]
    sales = set(invoices[invoices.str.fullmatch(r"\d+")].astype(np.int64))
    cancelled = set(invoices[invoices.str.startswith("C")].str[1:].astype(np.int64))
    baskets = set(np.unique(embedded.interactions.extra["basket"]).tolist())
    assert baskets <= sales  # every basket is a sale invoice, none is a cancellation
    assert not baskets & (cancelled - sales)


# ---------------------------------------------------------------- the full loader = the derivation


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_full_loader_reproduces_the_embedded_file(embedded, full):
    a, b = embedded, full
    assert b.name == "online-retail-full" and b.checksum == f"sha256:{orx.EMBEDDED_INPUT_SHA256}"
    for name in ("user", "item", "timestamp"):
        assert np.array_equal(getattr(a.interactions, name), getattr(b.interactions, name)), name
    assert (a.interactions.n_users, a.interactions.n_items) == (b.interactions.n_users,
                                                               b.interactions.n_items)
    assert np.array_equal(a.user_ids, b.user_ids) and np.array_equal(a.item_ids, b.item_ids)
    for table in ("item_features", "user_features"):
        ta, tb = getattr(a, table), getattr(b, table)
        assert ta.columns == tb.columns and np.array_equal(ta.values, tb.values), table
    for key in ("basket", "quantity"):
        assert np.array_equal(a.interactions.extra[key], b.interactions.extra[key]), key
    assert np.array_equal(a.item_info["text"], b.item_info["text"])
    assert np.array_equal(a.user_info["country"], b.user_info["country"])
    assert a.metadata["cleaning"] == b.metadata["cleaning"]
    assert a.interactions.fingerprint == b.interactions.fingerprint


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_full_loader_through_the_harness_cache(tmp_path, registry):
    spec = registry.dataset("online-retail-full")
    cfg = orx.FullConfig(path=str(RAW))
    ctx = LoadContext(None, tmp_path)
    first = open_dataset(spec, cfg, ctx)
    again = open_dataset(spec, cfg, ctx)  # from the binary cache
    assert list((tmp_path / "datasets").glob("online-retail-full-*.npz"))
    assert again.interactions.fingerprint == first.interactions.fingerprint
    assert np.array_equal(again.item_info["text"], first.item_info["text"])
    assert np.array_equal(again.item_features.values, first.item_features.values)
    assert registry.dataset("online-retail").card.license == "CC BY 4.0"


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_core_option_changes_the_filter(raw_lines):
    ten = orx.derive(raw_lines, core=10)
    assert len(ten["user_ids"]) < N_USERS and np.bincount(ten["user"]).min() >= 10


@pytest.mark.shared_data("uci-online-retail/online_retail.csv.gz")
def test_locate_by_path_folder_and_data_dir(tmp_path):
    ctx = LoadContext(None, tmp_path)
    assert orx.locate(orx.FullConfig(path=str(RAW)), ctx) == RAW
    assert orx.locate(orx.FullConfig(path=str(RAW.parent)), ctx) == RAW
    assert orx.locate(orx.FullConfig(), LoadContext(DATA, tmp_path)) == RAW
    with pytest.raises(DataError, match="is not the Online Retail file"):
        orx.locate(orx.FullConfig(path=str(tmp_path / "nope.csv")), ctx)


def test_download_uses_the_recorded_url_and_checksum(tmp_path, monkeypatch):
    """No network: the fetch is replaced; the loader must ask for the official archive, verified."""
    calls = []

    def fake_fetch(url, sha256, dest_dir, *, filename=None):
        calls.append((url, sha256, Path(dest_dir), filename))
        return RAW

    monkeypatch.setattr(orx, "fetch", fake_fetch)
    # Downloads go where the LoadContext says: the cache's downloads/ folder without a data dir,
    assert orx.locate(orx.FullConfig(), LoadContext(None, tmp_path)) == RAW
    # and the data dir when one is given (it lacks the file here).
    assert orx.locate(orx.FullConfig(), LoadContext(tmp_path / "mine", tmp_path)) == RAW
    assert calls == [(orx.URL, orx.ARCHIVE_SHA256, tmp_path / "downloads" / "uci-online-retail",
                      "online+retail.zip"),
                     (orx.URL, orx.ARCHIVE_SHA256, tmp_path / "mine" / "uci-online-retail",
                      "online+retail.zip")]


# ---------------------------------------------------------------- malformed raw files


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_missing_column_names_file_and_column(tmp_path):
    bad = _write(tmp_path / "retail.csv", HEADER.replace(",Quantity", "") +
                 GOOD.replace(",6,", ","))
    with pytest.raises(DataError, match=r"retail\.csv: column 'Quantity' is missing"):
        orx.read_raw(bad)


def test_non_numeric_quantity_names_file_column_and_line(tmp_path):
    bad = _write(tmp_path / "retail.csv", HEADER + GOOD + GOOD.replace(",6,", ",six,"))
    with pytest.raises(DataError, match=r"retail\.csv, line 3: column 'Quantity' holds 'six'"):
        orx.read_raw(bad)


def test_fractional_quantity_bad_price_and_bad_date_are_errors(tmp_path):
    cases = {",6,": (",1.5,", "Quantity"), ",2.55,": (",cheap,", "UnitPrice"),
             "2010-12-01 08:26:00": ("yesterday", "InvoiceDate"), ",17850,": (",X17,", "CustomerID")}
    for old, (new, column) in cases.items():
        bad = _write(tmp_path / "r.csv", HEADER + GOOD + GOOD + GOOD.replace(old, new))
        with pytest.raises(DataError, match=rf"r\.csv, line 4: column '{column}'"):
            orx.read_raw(bad)


def test_unreadable_file_is_a_data_error(tmp_path):
    bad = tmp_path / "retail.csv.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"retail\.csv\.gz: cannot (read|decompress)"):
        orx.read_raw(bad)


def test_gzip_zip_and_other_date_formats_parse_alike(tmp_path):
    text = HEADER + GOOD + GOOD.replace("2010-12-01 08:26:00", "12/1/2010 8:27").replace(
        "17850", "17850.0").replace("85123A", "85123a")
    plain = orx.read_raw(_write(tmp_path / "r.csv", text))
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    zipped = tmp_path / "r.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("Online Retail.csv", text)
    for other in (orx.read_raw(gz), orx.read_raw(zipped)):
        pd.testing.assert_frame_equal(plain, other)
    assert plain["time"].tolist() == [1291191960, 1291192020]
    assert plain["CustomerID"].tolist() == [17850, 17850]
    assert plain["StockCode"].tolist() == ["85123A", "85123A"]


def test_cleaning_rules_each_drop_their_lines(tmp_path):
    rows = [GOOD,
            GOOD.replace(",17850,", ",,"),  # no customer
            GOOD.replace(",17850,", ",NULL,"),  # no customer, spelled as recbench.fileio reads it
            GOOD.replace("536365", "C536365").replace(",6,", ",-6,"),  # cancellation
            GOOD.replace("536365", "A536365"),  # adjustment
            GOOD.replace("85123A", "POST"),  # non-product
            GOOD.replace(",6,", ",0,"),  # non-positive quantity
            GOOD.replace(",2.55,", ",0,")]  # free
    lines = orx.read_raw(_write(tmp_path / "r.csv", HEADER + "".join(rows)))
    kept, counts = orx.clean(lines)
    assert len(kept) == 1 and kept["line"].tolist() == [0]
    assert {k: counts[k] for k, _ in orx.RULES} == {k: 2 if k == "no_customer" else 1
                                                    for k, _ in orx.RULES}


def test_xlsx_in_the_uci_zip_reads_like_the_csv(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    import datetime as dt

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(orx.COLUMNS))
    ws.append([536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER ", 6,
               dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850, "United Kingdom"])
    ws.append(["C536379", "D", "Discount", -1, dt.datetime(2010, 12, 1, 9, 41), 27.5, None,
               "United Kingdom"])
    buf = io.BytesIO()
    wb.save(buf)
    archive = tmp_path / "online+retail.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Online Retail.xlsx", buf.getvalue())
    csv = _write(tmp_path / "r.csv", HEADER + GOOD +
                 "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,,United Kingdom\n")
    pd.testing.assert_frame_equal(orx.read_raw(archive), orx.read_raw(csv))


def test_datasets_info_density_matches_the_card(capsys):
    """Density counts distinct (customer, product) pairs: 264,510 / (4,074 x 3,145) = 2.06 %."""
    from recbench.cli.main import main

    assert main(["datasets", "info", "online-retail"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pairs"] == 264_510 and info["interactions"] == 384_338
    assert round(100 * info["density"], 2) == 2.06
