"""The sequential side-by-side's data path: the histories the RecBole runner writes equal the
ones recbench ranks from (ties in time included), and the page section it rewrites."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def modules():
    return (load("recbole_run", BENCH / "peers" / "recbole_run.py"),
            load("side_by_side", BENCH / "side_by_side.py"))


# user, item, rating, timestamp; "a" has a tie at 3 (file order decides) and one across parts
PARTS = {
    "train": ["a\t1\t4\t5", "b\t7\t3\t1", "a\t2\t4\t3", "a\t3\t5\t3", "b\t8\t1\t2", "a\t4\t2\t9"],
    "valid": ["b\t9\t2\t3", "a\t5\t4\t9"],
    "test": ["a\t6\t3\t10", "b\t1\t5\t4"],
}


@pytest.fixture
def files(tmp_path):
    out = {}
    for part, lines in PARTS.items():
        out[part] = tmp_path / f"{part}.tsv"
        out[part].write_text("\n".join(lines) + "\n")
    return out


def test_histories_match_recbench_order_and_truncate(modules, files, monkeypatch):
    recbole_run, side_by_side = modules
    parts = recbole_run.read_parts(files, list(side_by_side.COLUMNS))
    rows = recbole_run.sequential_rows(parts, max_len=3)
    # a: 2, 3 (tie at 3, file order), 1, 4; RecBole's augmentation: every item after the first
    assert [r for r in rows["train"] if r[0] == "a"] == [
        ("a", "3", ["2"]), ("a", "1", ["2", "3"]), ("a", "4", ["2", "3", "1"])]
    assert ("a", "5", ["3", "1", "4"]) in rows["valid"]
    monkeypatch.setattr(side_by_side, "MAX_LEN", 3)
    ours = side_by_side.recbench_test_rows(files)
    assert sorted(ours) == sorted((u, i, tuple(h)) for u, i, h in rows["test"])
    assert ("a", "6", ("1", "4", "5")) in ours and ("b", "1", ("7", "8", "9")) in ours


def test_comparison_sees_a_different_history(modules, files, tmp_path, monkeypatch):
    _, side_by_side = modules
    monkeypatch.setattr(side_by_side, "MAX_LEN", 3)
    dump = tmp_path / "dump.tsv"
    dump.write_text("a\t6\t1 4 5\nb\t1\t8 7 9\n")  # b's history out of order
    line = side_by_side.compare_test_rows(files, dump)
    assert line.endswith("rows that differ: 2") and "RecBole 2 (2 users" in line
    dump.write_text("a\t6\t1 4 5\nb\t1\t7 8 9\n")
    assert side_by_side.compare_test_rows(files, dump).endswith("rows that differ: 0")


def test_section_replaced_or_appended(modules, tmp_path):
    _, side_by_side = modules
    page = tmp_path / "page.md"
    page.write_text("intro\n\n## One\n\nold\n\n## Two\n\nkept\n")
    assert side_by_side.in_section(page, "One", "new") == \
        "intro\n\n## One\n\nnew\n## Two\n\nkept\n"
    assert side_by_side.in_section(page, "Three", "x").endswith("kept\n\n## Three\n\nx\n")
