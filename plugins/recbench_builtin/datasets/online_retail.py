"""``online-retail`` (embedded, the default real dataset) and ``online-retail-full`` (the raw UCI file).

The UCI "Online Retail" data set holds the 541,909 order lines of a UK online gift shop from
2010-12-01 to 2011-12-09 (Chen, Sain & Guo 2012; UCI ML Repository, DOI 10.24432/C5BW33; CC BY 4.0).
It is the seed scenario of recbench: an e-commerce shop's purchase histories with item attributes.

Both datasets come out of the same code, here, so the derivation lives in one place:

1. :func:`read_raw` reads the raw file (the UCI ``online+retail.zip``, its ``Online Retail.xlsx``, or
   a CSV/CSV.gz export with the same eight columns) into typed columns; a malformed file is a
   :class:`~recbench.errors.DataError` naming the file, the column and the line.
2. :func:`clean` applies the cleaning rules (see :data:`RULES`), in order, and counts what each drops.
3. :func:`derive` aggregates the clean order lines to one interaction per (customer, invoice,
   product), keeps the 5-core, derives the item and user attributes and returns the arrays that
   ``scripts/build_online_retail.py`` stores in ``data/online_retail.npz`` (shipped in the package).
4. :func:`dataset_from_arrays` turns those arrays into a :class:`~recbench.Dataset`.

``online-retail`` reads the shipped ``.npz`` (no network, ~0.1 s). ``online-retail-full`` runs steps
1-4 on the raw file, found at config ``path``, else under ``LoadContext.data_dir`` (as
``uci-online-retail/online_retail.csv.gz`` and other known names, see :data:`RAW_NAMES`), else
downloaded from UCI (checksum-verified) into ``uci-online-retail/`` under
:func:`recbench.download.download_dir` (the folder the harness chose). With the default ``core = 5`` it reproduces the embedded
dataset exactly (``tests/test_online_retail.py`` checks it).

What the Dataset holds
----------------------
* interactions: user = customer, item = product (StockCode), no rating (implicit feedback),
  timestamp = the invoice's time in int64 seconds (the file's naive UK local time read as UTC).
  Rows are ordered by (customer, time, invoice, invoice line), so equal timestamps within a basket
  keep the order of the invoice's lines.
* ``user_ids``: the CustomerID (int64); ``item_ids``: the StockCode (str, upper-cased).
* item features (:class:`~recbench.FeatureTable`): ``price`` (median unit price, GBP, over the
  whole period: a catalogue attribute, stable over time for most items).
* ``item_info["discount"]`` (mean over the item's purchase lines of ``max(0, (median - unit price)
  / median)``: how far a purchase's price sits below the item's usual price) and
  ``item_info["sales"]`` (``log1p`` of the total quantity sold): side information, not model
  features, because they are computed over every order line, test lines included: as features they
  would hand a model the test period's purchases (a cold item's sales are its test purchases).
* user features: country one-hot (columns ``country=<name>``).
* ``interactions.extra["basket"]``: the invoice number (int64) per interaction row -- baskets;
  ``interactions.extra["quantity"]``: units per row; ``item_info["text"]``: the product description
  per item (for text features); ``user_info["country"]``: the country per user. These travel with
  their rows through preprocessing and splits.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recbench.api import (
    atomic_write,
    check,
    DataError,
    Dataset,
    DatasetCard,
    DatasetSpec,
    decode_text,
    digest_bytes,
    download_dir,
    FeatureTable,
    fetch,
    file_sha256,
    Interactions,
    LoadContext,
    MISSING_VALUES,
    read_bytes,
)

# ---------------------------------------------------------------- provenance

URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"
# sha256 of the official archive (23,715,478 bytes, holds "Online Retail.xlsx"). Not verified here
# (built offline); it is the value that several independent public projects record and enforce when
# they download this URL. A mismatch makes the download refuse, never load other data.
ARCHIVE_SHA256 = "f5385cbb54bbebf7196389109c6b0621faab0c304e3702548165e71c84aede8b"
LICENSE = "CC BY 4.0"
CITATION = (
    "Chen, D., Sain, S. L., & Guo, K. (2012). Data mining for the online retail industry: A case "
    "study of RFM model-based customer segmentation using data mining. Journal of Database "
    "Marketing & Customer Strategy Management, 19(3), 197-208. doi:10.1057/dbm.2012.17. "
    "Dataset: Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository. "
    "https://doi.org/10.24432/C5BW33."
)
BIBTEX = r"""@article{chen2012online,
  author  = {Chen, Daqing and Sain, Sai Laing and Guo, Kun},
  title   = {Data mining for the online retail industry: A case study of {RFM} model-based
             customer segmentation using data mining},
  journal = {Journal of Database Marketing \& Customer Strategy Management},
  volume  = {19}, number = {3}, pages = {197--208}, year = {2012},
  doi     = {10.1057/dbm.2012.17}
}
@misc{chen2015onlineretail,
  author = {Chen, Daqing}, title = {{Online Retail}}, year = {2015},
  howpublished = {UCI Machine Learning Repository}, doi = {10.24432/C5BW33}
}"""
ATTRIBUTION = ("Derived from \"Online Retail\" by Daqing Chen, UCI Machine Learning Repository "
               "(https://doi.org/10.24432/C5BW33), licensed CC BY 4.0; cleaned, aggregated and "
               "5-core filtered by recbench (scripts/build_online_retail.py).")

SCRIPT = "scripts/build_online_retail.py"
EMBEDDED_RESOURCE = "data/online_retail.npz"
# The input the embedded file was built from (../shared/datasets/uci-online-retail/online_retail.csv.gz,
# a cross-checked reconstruction of the UCI file) and the built file; see datasets/online-retail.md.
EMBEDDED_INPUT_SHA256 = "24bb5fccf34d11309a5b1462ea4b875ebf120ec76fb38b2df2ddc308656f0623"
EMBEDDED_SHA256 = "b2724f86caf803bf5b8101f7af68cb97e3662522baf65f0a2d82b52832ecd842"

# ---------------------------------------------------------------- raw file and cleaning rules

COLUMNS: tuple[str, ...] = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                            "UnitPrice", "CustomerID", "Country")
# Known names of the raw file, searched in a folder (and its ``uci-online-retail/`` subfolder).
RAW_NAMES: tuple[str, ...] = ("online_retail.csv.gz", "online_retail.csv", "Online Retail.xlsx",
                              "online+retail.zip", "Online Retail.csv")
# A product's StockCode is 5 digits plus an optional letter suffix (colour/size variant), compared
# upper-cased ("85123a" and "85123A" are one product). Every other code in the file is a service
# or bookkeeping line: POST, DOT (postage), C2 (carriage), M/m (manual), D (discount), S (samples),
# B (bad-debt adjustment), BANK CHARGES, AMAZONFEE, CRUK (commission), PADS (0.001 GBP filler),
# gift_0001_* (vouchers) and the DCGS* dotcom-shop lines (none of them has a CustomerID).
PRODUCT_CODE = r"^\d{5}[A-Z]*$"
RULES: tuple[tuple[str, str], ...] = (
    ("no_customer", "CustomerID is empty"),
    ("cancellation", "InvoiceNo starts with 'C' (a cancellation)"),
    ("non_numeric_invoice", "InvoiceNo is not all digits (the 'A' bad-debt adjustments)"),
    ("non_product", f"StockCode (upper-cased) does not match {PRODUCT_CODE}"),
    ("non_positive_quantity", "Quantity <= 0 (returns)"),
    ("non_positive_price", "UnitPrice <= 0 (free items, adjustments)"),
)
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M")


def _text_frame(path: Path) -> tuple[pd.DataFrame, str]:
    """The raw table with every column as text, and the word for a row: line/row. A number
    column's missing values are :data:`~recbench.fileio.MISSING_VALUES` ("" in the real file)."""
    def csv(data: bytes) -> pd.DataFrame:  # recbench.fileio's one decoding rule
        return pd.read_csv(io.StringIO(decode_text(data)), dtype=str, keep_default_na=False)

    def xlsx(handle: Any) -> pd.DataFrame:
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise DataError(f"{path}: reading the original .xlsx needs openpyxl; "
                            "`pip install openpyxl`, or pass path= to a CSV export of the sheet "
                            "(e.g. ../shared/datasets/uci-online-retail/online_retail.csv.gz)") from None
        return _xlsx_as_text(pd.read_excel(handle, engine="openpyxl"))

    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if m.lower().endswith((".xlsx", ".csv"))]
                if not members:
                    raise DataError(f"{path}: the archive holds no .xlsx or .csv file "
                                    f"({', '.join(z.namelist()) or 'empty'})")
                data = z.read(members[0])
            if members[0].lower().endswith(".xlsx"):
                return xlsx(io.BytesIO(data)), "row"
            return csv(data), "line"
        if name.endswith((".xlsx", ".xls")):
            return xlsx(path), "row"
        return csv(read_bytes(path)), "line"
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, ValueError,
            pd.errors.ParserError, EOFError) as e:
        raise DataError(f"{path}: cannot read the Online Retail file ({type(e).__name__}: {e}); "
                        "pass path= to the UCI online+retail.zip, its Online Retail.xlsx or a "
                        "CSV(.gz) with the columns " + ", ".join(COLUMNS)) from None


def _xlsx_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Excel cells (ints, floats, datetimes, None) as the text a CSV export would hold."""
    def text(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if hasattr(v, "strftime"):  # Excel serial dates: round float noise to the second
            return pd.Timestamp(v).round("s").strftime("%Y-%m-%d %H:%M:%S")
        return str(v)
    return pd.DataFrame({c: df[c].map(text).astype(str) for c in df.columns})


def _first_bad(path: Path, unit: str, column: str, bad: np.ndarray, values: pd.Series,
               expected: str) -> DataError:
    row = int(np.flatnonzero(bad)[0])
    return DataError(f"{path}, {unit} {row + 2}: column {column!r} holds {values.iloc[row]!r}, "
                     f"expected {expected} ({int(bad.sum())} such {unit}s); fix or remove them")


def read_raw(path: str | Path) -> pd.DataFrame:
    """The raw order lines, typed: text columns stripped, StockCode upper-cased, numbers parsed.

    Columns: InvoiceNo, StockCode, Description, Country (str), Quantity (int64), UnitPrice
    (float64), CustomerID (int64, -1 = missing), time (int64 seconds, naive local time read as UTC),
    line (int64, 0-based data row in the file). A malformed file raises :class:`DataError` naming
    the file, the column and the first bad line.
    """
    path = Path(path)
    raw, unit = _text_frame(path)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: column {missing[0]!r} is missing (found: "
                        f"{', '.join(map(str, raw.columns)) or 'none'}); the Online Retail file has "
                        f"the columns {', '.join(COLUMNS)}")
    out = pd.DataFrame({
        "InvoiceNo": raw["InvoiceNo"].str.strip(),
        "StockCode": raw["StockCode"].str.strip().str.upper(),
        "Description": raw["Description"].str.strip(),
        "Country": raw["Country"].str.strip(),
    })

    def number(column: str, integer: bool, allow_empty: bool = False) -> np.ndarray:
        text = raw[column].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        empty = text.isin(MISSING_VALUES).to_numpy()
        bad = ~np.isfinite(values) & ~(empty & allow_empty)
        if integer:
            bad |= np.isfinite(values) & (values != np.round(values))
        if bad.any():
            raise _first_bad(path, unit, column, bad, raw[column],
                             "an integer" if integer else "a number")
        if integer:
            return np.where(np.isfinite(values), values, -1).astype(np.int64)
        return values

    out["Quantity"] = number("Quantity", integer=True)
    out["UnitPrice"] = number("UnitPrice", integer=False)
    out["CustomerID"] = number("CustomerID", integer=True, allow_empty=True)
    text = raw["InvoiceDate"].str.strip()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    for fmt in _TIME_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce").astype("datetime64[s]")
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _first_bad(path, unit, "InvoiceDate", bad, raw["InvoiceDate"],
                         "a date like 2010-12-01 08:26:00")
    out["time"] = parsed.to_numpy("datetime64[s]").astype(np.int64)
    out["line"] = np.arange(len(out), dtype=np.int64)
    return out


def clean(lines: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply :data:`RULES` in order; returns the kept lines and, per rule, the lines it dropped."""
    inv, code = lines["InvoiceNo"], lines["StockCode"]
    masks = {
        "no_customer": lines["CustomerID"].to_numpy() < 0,
        "cancellation": inv.str.startswith("C").to_numpy(),
        "non_numeric_invoice": ~inv.str.fullmatch(r"\d+").to_numpy(bool),
        "non_product": ~code.str.fullmatch(PRODUCT_CODE).to_numpy(bool),
        "non_positive_quantity": lines["Quantity"].to_numpy() <= 0,
        "non_positive_price": ~(lines["UnitPrice"].to_numpy() > 0),
    }
    keep = np.ones(len(lines), bool)
    counts = {"raw_lines": len(lines)}
    for name, _ in RULES:
        drop = keep & masks[name]
        counts[name] = int(drop.sum())
        keep &= ~drop
    counts["clean_lines"] = int(keep.sum())
    return lines[keep].reset_index(drop=True), counts


def _mode_first(keys: np.ndarray, values: pd.Series, n: int) -> np.ndarray:
    """Per key ``0..n-1``: its most frequent value, ties to the value that occurs first."""
    df = pd.DataFrame({"k": keys, "v": values.to_numpy(), "pos": np.arange(len(keys))})
    g = df.groupby(["k", "v"], sort=False).agg(count=("pos", "size"), first=("pos", "min"))
    g = g.reset_index().sort_values(["k", "count", "first"], ascending=[True, False, True],
                                    kind="stable")
    best = g.drop_duplicates("k")
    out = np.empty(n, dtype=object)
    out[best["k"].to_numpy()] = best["v"].to_numpy()
    return out.astype(str)


def _core_pairs(user: np.ndarray, item: np.ndarray, core: int) -> np.ndarray:
    """Mask of pairs in the maximal subgraph where every user and item has >= core distinct pairs."""
    alive = np.ones(len(user), bool)
    nu, ni = int(user.max()) + 1, int(item.max()) + 1
    while True:
        u, i = user[alive], item[alive]
        ok = (np.bincount(u, minlength=nu) >= core)[u] & (np.bincount(i, minlength=ni) >= core)[i]
        if ok.all():
            return alive
        alive[np.flatnonzero(alive)[~ok]] = False


def _smallest_uint(n: int) -> type:
    return np.uint16 if n <= np.iinfo(np.uint16).max + 1 else np.int32


def derive(lines: pd.DataFrame, core: int = 5) -> dict[str, np.ndarray]:
    """The dataset's arrays from the raw lines (:func:`read_raw`): clean, aggregate, k-core, attributes.

    * One interaction per (customer, invoice, product): quantities of repeated lines are summed,
      so baskets (invoices) survive and repeat purchases across invoices stay separate rows.
      Its time is the invoice's time (its earliest line; 30 invoices straddle a minute).
    * k-core, iterated to a fixed point, on *distinct* (customer, product) pairs: every customer
      bought >= ``core`` distinct products and every product has >= ``core`` distinct customers
      (so both also have >= ``core`` rows, and the core survives the harness's default dedup).
    * Item attributes over the kept order lines (unweighted by quantity): median unit price,
      discount = mean of ``max(0, (median - price) / median)``, total quantity, description (the
      most frequent text, ties to the earliest). User attribute: country, the same way.

    Returns plain arrays (no objects): what the build script stores and :func:`dataset_from_arrays`
    reads. Deterministic: same input, same arrays.
    """
    if core < 1:
        raise DataError(f"online retail: core must be >= 1, got {core}")
    kept, counts = clean(lines)
    if len(kept) == 0:
        raise DataError("online retail: no order line survives cleaning; is this the Online "
                        "Retail file?")
    kept = kept.assign(InvoiceNo=kept["InvoiceNo"].astype(np.int64))
    inv_time = kept.groupby("InvoiceNo")["time"].transform("min").to_numpy()
    kept = kept.assign(time=inv_time)

    # Distinct pairs -> k-core on them -> keep the lines of surviving customers and products.
    cust_codes, cust = np.unique(kept["CustomerID"].to_numpy(), return_inverse=True)
    item_codes, item = np.unique(kept["StockCode"].to_numpy(str), return_inverse=True)
    pair = cust.astype(np.int64) * len(item_codes) + item
    upair, pair_idx = np.unique(pair, return_inverse=True)
    alive = _core_pairs(upair // len(item_codes), upair % len(item_codes), core)
    if not alive.any():
        raise DataError(f"online retail: the {core}-core is empty; lower core")
    kept = kept[alive[pair_idx]].reset_index(drop=True)
    counts["core_lines"] = len(kept)

    # Dense ids in sorted order of the original ids (as Dataset.from_arrays would assign them).
    user_ids, user = np.unique(kept["CustomerID"].to_numpy(np.int64), return_inverse=True)
    item_ids, item = np.unique(kept["StockCode"].to_numpy(str), return_inverse=True)
    n_users, n_items = len(user_ids), len(item_ids)

    # Interactions: one row per (customer, invoice, product), ordered by (customer, time, invoice,
    # first line of the product in the invoice).
    rows = pd.DataFrame({"user": user, "item": item, "basket": kept["InvoiceNo"].to_numpy(),
                         "time": kept["time"].to_numpy(), "quantity": kept["Quantity"].to_numpy(),
                         "line": kept["line"].to_numpy()})
    rows = (rows.groupby(["user", "basket", "item"], sort=False)
            .agg(time=("time", "first"), quantity=("quantity", "sum"), line=("line", "min"))
            .reset_index()
            .sort_values(["user", "time", "basket", "line"], kind="stable"))
    counts["interactions"] = len(rows)

    # Item attributes over the kept lines.
    price = kept["UnitPrice"].to_numpy(np.float64)
    median = pd.Series(price).groupby(item).median().reindex(range(n_items)).to_numpy()
    below = np.maximum(0.0, (median[item] - price) / median[item])
    discount = np.bincount(item, weights=below, minlength=n_items) / np.bincount(item, minlength=n_items)
    sales = np.bincount(item, weights=kept["Quantity"].to_numpy(np.float64), minlength=n_items)

    return {
        "user": rows["user"].to_numpy().astype(_smallest_uint(n_users)),
        "item": rows["item"].to_numpy().astype(_smallest_uint(n_items)),
        "timestamp": rows["time"].to_numpy(np.int64),
        "basket": rows["basket"].to_numpy(np.int64),
        "quantity": rows["quantity"].to_numpy(np.int64),
        "user_ids": user_ids.astype(np.int64),
        "item_ids": item_ids.astype(str),
        "item_price": median.astype(np.float32),
        "item_discount": discount.astype(np.float32),
        "item_sales": np.rint(sales).astype(np.int64),
        "item_text": _mode_first(item, kept["Description"], n_items),
        "user_country": _mode_first(user, kept["Country"], n_users),
        "cleaning": np.array(json.dumps({"core": core, **counts}, sort_keys=True)),
    }


# ---------------------------------------------------------------- the .npz file


def write_npz(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """``np.savez_compressed``, but byte-for-byte deterministic (fixed zip entry times and order);
    written atomically (:func:`recbench.fileio.atomic_write`)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, member.getvalue(), compresslevel=9)
    atomic_write(path, lambda f: f.write(buf.getvalue()), "wb")


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------- arrays -> Dataset


def dataset_from_arrays(name: str, arrays: dict[str, np.ndarray], checksum: str,
                        derivation: dict[str, Any]) -> Dataset:
    a = arrays
    n_users, n_items = len(a["user_ids"]), len(a["item_ids"])
    x = Interactions(a["user"], a["item"], n_users, n_items, None, a["timestamp"],
                     {"basket": a["basket"], "quantity": a["quantity"]})
    item_features = FeatureTable(a["item_price"][:, None].astype(np.float32), ("price",))
    sales = np.log1p(a["item_sales"].astype(np.float64)).astype(np.float32)
    countries, country = np.unique(a["user_country"], return_inverse=True)
    onehot = np.zeros((n_users, len(countries)), np.float32)
    onehot[np.arange(n_users), country] = 1.0
    user_features = FeatureTable(onehot, tuple(f"country={c}" for c in countries))
    metadata = {"cleaning": json.loads(str(a["cleaning"])), "derivation": derivation,
                "source": URL, "license": LICENSE, "attribution": ATTRIBUTION}
    return Dataset(name, x, np.array(a["user_ids"]), np.array(a["item_ids"]), item_features,
                   user_features, checksum, metadata, item_info={"text": a["item_text"], "discount": a["item_discount"],
                                                     "sales": sales},
                   user_info={"country": a["user_country"]})


# ---------------------------------------------------------------- loaders


def load_embedded(cfg: Any = None, ctx: LoadContext | None = None) -> Dataset:
    """``online-retail``: the derived file shipped in the package; no file system or network."""
    data = resources.files(__package__).joinpath(EMBEDDED_RESOURCE).read_bytes()
    digest = digest_bytes(data)
    return dataset_from_arrays("online-retail", read_npz(data), f"sha256:{digest}",
                               {"script": SCRIPT, "input_sha256": EMBEDDED_INPUT_SHA256,
                                "output_sha256": digest})


@dataclass(frozen=True)
class FullConfig:
    path: str | None = None  # the raw file (zip/xlsx/csv/csv.gz) or a folder holding one
    core: int = 5  # k-core on distinct (customer, product) pairs; 5 reproduces `online-retail`

    def __post_init__(self) -> None:
        check(self.core >= 1, f"core must be >= 1, got {self.core}")


def _find(folder: Path) -> Path | None:
    for base in (folder, folder / "uci-online-retail"):
        for name in RAW_NAMES:
            if (base / name).is_file():
                return base / name
    return None


def locate(cfg: FullConfig, ctx: LoadContext) -> Path:
    """The raw file: config ``path``, else ``data_dir``, else the download cache, else download."""
    if cfg.path is not None:
        p = Path(cfg.path).expanduser()
        found = _find(p) if p.is_dir() else (p if p.is_file() else None)
        if found is None:
            raise DataError(f"online-retail-full: path {str(p)!r} is not the Online Retail file or a "
                            f"folder holding one of {', '.join(RAW_NAMES)}")
        return found
    if ctx.data_dir is not None and (found := _find(Path(ctx.data_dir))) is not None:
        return found
    dest = download_dir(ctx) / "uci-online-retail"
    return Path(fetch(URL, ARCHIVE_SHA256, dest, filename="online+retail.zip"))


def fingerprint_full(cfg: FullConfig, ctx: LoadContext) -> str:
    """The raw file's content hash (the harness adds this module's code to the cache key)."""
    return file_sha256(locate(cfg, ctx))


def load_full(cfg: FullConfig, ctx: LoadContext) -> Dataset:
    path = locate(cfg, ctx)
    digest = file_sha256(path)
    arrays = derive(read_raw(path), cfg.core)
    return dataset_from_arrays("online-retail-full", arrays, f"sha256:{digest}",
                               {"script": SCRIPT, "input": path.name, "input_sha256": digest,
                                "core": cfg.core})


_DESCRIPTION = (
    "UCI Online Retail: customers x products of a UK online gift shop, implicit feedback "
    "(2010-12-01..2011-12-09). One row per (customer, invoice, product), timestamps in seconds, "
    "invoice per row in interactions.extra['basket']; cancellations, returns, non-product codes, free items "
    "and rows without a customer removed; 5-core on distinct customer-product pairs. Item feature "
    "price (median unit price); discount (mean relative price below the median) and sales (log1p "
    "quantity) in item_info only, as they are computed over the test period too; descriptions in "
    "item_info['text']; user features country one-hot.")

SPECS: list[DatasetSpec] = [
    DatasetSpec(
        "online-retail", load_embedded,
        DatasetCard(
            _DESCRIPTION + f" Embedded in the package (no network). Derivation: {SCRIPT} on "
            f"online_retail.csv.gz (sha256 {EMBEDDED_INPUT_SHA256}) -> {EMBEDDED_RESOURCE} "
            f"(sha256 {EMBEDDED_SHA256}); see datasets/online-retail.md. {ATTRIBUTION}",
            source=URL, license=LICENSE, citation=CITATION, bibtex=BIBTEX)),
    DatasetSpec(
        "online-retail-full", load_full,
        DatasetCard(
            _DESCRIPTION + " Parsed from the raw UCI file: config `path`, else the data dir "
            "(uci-online-retail/online_retail.csv.gz), else downloaded from UCI "
            f"(sha256 {ARCHIVE_SHA256}); reading the .xlsx needs openpyxl. With core=5 it equals "
            f"`online-retail`. {ATTRIBUTION}",
            source=URL, license=LICENSE, citation=CITATION, bibtex=BIBTEX),
        FullConfig, fingerprint=fingerprint_full),
]
