"""Binary cache of parsed datasets: one invalidation rule for every dataset plugin.

A dataset whose spec provides ``fingerprint`` is parsed once; later loads read one ``.npz`` (arrays
and a JSON header: names, metadata). An entry's key is the hash of

- the dataset's name and its validated config,
- ``spec.fingerprint(cfg, ctx)``: the content hash of the source files (the plugin's part), and
- :func:`loader_code_digest`: the sha256 of the source of the module that defines ``spec.load`` and
  of the modules of the same package it takes names from (e.g. ``files.py`` and its ``_tables.py``),
- :func:`recbench.provenance.core_code`: recbench's own code (its file reading and decoding),

so a changed file or a changed parser never serves an old parse, and plugins need no version
counter of their own. Entries are written with :func:`recbench.fileio.atomic_write`; a damaged
entry is ignored and rebuilt, never trusted.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .config import config_hash, to_dict
from .data import Dataset, FeatureTable, Interactions
from .fileio import atomic_write, file_sha256
from .provenance import core_code
from .specs import DatasetSpec, LoadContext

FORMAT = 2


def default_cache_dir() -> Path:
    """``RECBENCH_CACHE_DIR``, else the per-user cache (``$XDG_CACHE_HOME/recbench``); never the
    working directory, so parsed data never lands in a project checkout."""
    env = os.environ.get("RECBENCH_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recbench"


def _module_files(func: Any) -> list[Path]:
    """The source file of the module defining ``func`` and of the modules of its package that it
    imports (read from its import statements, so constants count too)."""
    while isinstance(func, functools.partial):
        func = func.func
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    source = getattr(module, "__file__", None)
    if module is None or not source or not source.endswith(".py"):
        return []
    names = _imported_modules(module.__name__, source, Path(source).stat().st_mtime_ns)
    files = [getattr(sys.modules.get(n), "__file__", None) for n in sorted(names)]
    return [Path(f) for f in files if f and f.endswith(".py")]


@functools.lru_cache(maxsize=256)
def _imported_modules(name: str, source: str, mtime_ns: int) -> frozenset[str]:
    """``name`` and the same-package modules its source imports (parsed once per mtime)."""
    package = name.rpartition(".")[0]
    names = {name}
    for node in ast.walk(ast.parse(Path(source).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and package:
            base = f"{package}.{node.module}" if node.module else package
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from . import helper`
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and package:
            if node.module.startswith(package + "."):
                names.add(node.module)
    return frozenset(names)


def loader_code_digest(spec: DatasetSpec) -> str:
    """Hash of the parser's code (see the module docstring): a parser fix invalidates old parses."""
    h = hashlib.sha256()
    for path in _module_files(spec.load):
        h.update(path.name.encode() + b"=" + file_sha256(path).encode() + b"\x1e")
    return h.hexdigest()


def load(spec: DatasetSpec, cfg: Any, ctx: LoadContext) -> Dataset:
    """``spec.load`` through the cache when the spec can fingerprint its source."""
    if spec.fingerprint is None:
        return spec.load(cfg, ctx)
    key = config_hash({"format": FORMAT, "name": spec.name, "config": to_dict(cfg),
                       "source": spec.fingerprint(cfg, ctx),
                       "code": loader_code_digest(spec),
                       # recbench's own reading code (fileio's decoding, missing values) too
                       "recbench_code": core_code()})[:24]
    path = Path(ctx.cache_dir) / "datasets" / f"{spec.name}-{key}.npz"
    try:
        return read(path)
    except (OSError, ValueError, KeyError):
        pass  # absent or damaged: parse again
    ds = spec.load(cfg, ctx)
    write(ds, path)
    return ds


def _table_arrays(prefix: str, table: FeatureTable | None, arrays: dict[str, np.ndarray]) -> Any:
    if table is None:
        return None
    if sp.issparse(table.values):
        m = table.values
        arrays.update({f"{prefix}_data": m.data, f"{prefix}_indices": m.indices,
                       f"{prefix}_indptr": m.indptr})
        return {"columns": list(table.columns), "sparse": True, "shape": list(m.shape)}
    arrays[f"{prefix}_values"] = np.asarray(table.values)
    return {"columns": list(table.columns), "sparse": False}


def _table(prefix: str, meta: Any, z: Any) -> FeatureTable | None:
    if meta is None:
        return None
    if meta["sparse"]:
        m = sp.csr_matrix((z[f"{prefix}_data"], z[f"{prefix}_indices"], z[f"{prefix}_indptr"]),
                          shape=tuple(meta["shape"]))
        return FeatureTable(m, tuple(meta["columns"]))
    return FeatureTable(z[f"{prefix}_values"], tuple(meta["columns"]))


def write(ds: Dataset, path: Path) -> None:
    x = ds.interactions
    ids = lambda a: a.astype(str) if a.dtype == object else a  # noqa: E731 - npz holds no objects
    arrays: dict[str, np.ndarray] = {"user": x.user, "item": x.item, "user_ids": ids(ds.user_ids),
                                     "item_ids": ids(ds.item_ids)}
    if x.rating is not None:
        arrays["rating"] = x.rating
    if x.timestamp is not None:
        arrays["timestamp"] = x.timestamp
    for prefix, columns in (("x", x.extra), ("ii", ds.item_info), ("ui", ds.user_info)):
        arrays.update({f"{prefix}_{k}": ids(v) for k, v in columns.items()})
    # Array-valued metadata goes in the npz, the rest (JSON types) in the header.
    array_meta = [k for k, v in ds.metadata.items() if isinstance(v, np.ndarray)]
    arrays.update({f"meta_{k}": ds.metadata[k] for k in array_meta})
    header = {
        "format": FORMAT, "name": ds.name, "checksum": ds.checksum,
        "n_users": x.n_users, "n_items": x.n_items,
        "item_features": _table_arrays("if", ds.item_features, arrays),
        "user_features": _table_arrays("uf", ds.user_features, arrays),
        "metadata": {k: v for k, v in ds.metadata.items() if k not in array_meta},
        "array_metadata": array_meta,
        "columns": {"x": list(x.extra), "ii": list(ds.item_info), "ui": list(ds.user_info)},
    }
    arrays["header"] = np.frombuffer(json.dumps(to_dict(header)).encode(), np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays), "wb")


def read(path: Path) -> Dataset:
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes().decode())
        if header["format"] != FORMAT:
            raise ValueError("cache format changed")
        get = lambda k: z[k] if k in z.files else None  # noqa: E731
        cols = {p: {k: z[f"{p}_{k}"] for k in names} for p, names in header["columns"].items()}
        x = Interactions(z["user"], z["item"], header["n_users"], header["n_items"],
                         get("rating"), get("timestamp"), cols["x"])
        metadata = dict(header["metadata"])
        metadata.update({k: z[f"meta_{k}"] for k in header["array_metadata"]})
        return Dataset(header["name"], x, z["user_ids"], z["item_ids"],
                       _table("if", header["item_features"], z),
                       _table("uf", header["user_features"], z), header["checksum"], metadata,
                       cols["ii"], cols["ui"])
