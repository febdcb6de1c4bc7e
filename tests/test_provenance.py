"""Provenance: code fingerprints of plugin distributions and of recbench itself; the hardware record."""

from __future__ import annotations

import importlib.metadata as md
import os

import jax

from recbench import provenance


def fake_distribution(site, name: str, *, recorded: bool) -> md.Distribution:
    """A one-package distribution in ``site``: its module listed in RECORD (an installed release)
    or not (an editable install, whose RECORD lists only the path hook)."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("WEIGHT = 1.0\n")
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    listed = f"{name}/__init__.py,sha256=x,12\n" if recorded else f"__editable__.{name}.pth,,\n"
    (info / "RECORD").write_text(listed + f"{info.name}/RECORD,,\n")
    return md.PathDistribution(info)


def test_editable_distribution_is_fingerprinted_by_its_sources(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = fake_distribution(tmp_path, "rb_editable_demo", recorded=False)
    before = provenance.distribution_code(dist, "rb_editable_demo")
    assert before.startswith("source:")
    (tmp_path / "rb_editable_demo" / "__init__.py").write_text("WEIGHT = 2.0\n")  # no version bump
    assert provenance.distribution_code(dist, "rb_editable_demo") != before


def test_installed_distribution_is_fingerprinted_by_its_record(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = fake_distribution(tmp_path, "rb_installed_demo", recorded=True)
    code = provenance.distribution_code(dist, "rb_installed_demo.sub")
    assert code.startswith("record:")
    (tmp_path / "rb_installed_demo-0.1.0.dist-info" / "RECORD").write_text("changed\n")
    assert provenance.distribution_code(dist, "rb_installed_demo") != code


def test_core_code_hashes_the_checkout_else_names_the_version(monkeypatch):
    import recbench

    assert provenance.core_code().startswith("source:")  # the tests run from a checkout
    monkeypatch.setattr(provenance, "_is_development", lambda dist, package: False)
    provenance.core_code.cache_clear()
    try:
        assert provenance.core_code() == f"recbench {recbench.__version__}"
    finally:
        provenance.core_code.cache_clear()


def test_hardware_names_cpu_cores_threads_and_load():
    hw = provenance.hardware(jax.devices("cpu")[0])
    assert isinstance(hw["cpu_model"], str) and hw["cpu_model"]
    assert hw["cpu_threads"] == os.cpu_count()
    assert hw["cpu_physical_cores"] is None or 1 <= hw["cpu_physical_cores"] <= hw["cpu_threads"]
    if hasattr(os, "getloadavg"):
        assert len(hw["load_average_1_5_15m"]) == 3 and min(hw["load_average_1_5_15m"]) >= 0


def test_physical_cores_count_distinct_core_ids():
    text = "".join(f"processor\t: {i}\nmodel name\t: Test CPU 9000\nphysical id\t: {i // 4}\n"
                   f"core id\t\t: {i % 4 // 2}\n\n" for i in range(8))  # 2 sockets x 2 cores x 2
    assert provenance.parse_cpuinfo(text) == ("Test CPU 9000", 4)
    assert provenance.parse_cpuinfo("processor\t: 0\n") == (None, None)
