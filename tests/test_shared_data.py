"""The real-data rule of conftest: missing data skips naming RECBENCH_TEST_DATA, and fails under CI."""

from __future__ import annotations

import pytest


def test_missing_data_skips_with_the_variable_to_set(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("RECBENCH_TEST_DATA", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"set RECBENCH_TEST_DATA .*ml-100k"):
        shared_data("ml-100k")


def test_missing_data_fails_under_ci(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("RECBENCH_TEST_DATA", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="real test data missing"):
        shared_data("ml-100k")


def test_present_data_returns_the_folder(tmp_path, monkeypatch, shared_data):
    (tmp_path / "ml-100k").mkdir()
    monkeypatch.setenv("RECBENCH_TEST_DATA", str(tmp_path))
    assert shared_data("ml-100k") == tmp_path
