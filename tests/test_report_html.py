"""The self-contained HTML report: built from a real (tiny) run, nothing external referenced, what
was skipped listed, and loaded in headless Chromium (Debian's ``chromium``, driven by Playwright):
tables and every plot render, no console error, a screenshot saved.

The browser test is skipped only where no Chromium is installed (``.ci/run`` installs it); under
CI (``CI=true``) a missing Chromium fails it instead, as missing real data does.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from recbench.config import Component, Experiment, Protocol
from recbench.errors import RecbenchError
from recbench.report.html import (Section, critical_difference_section, render_html,
                                  report_from_results, report_html)
from recbench.report.tables import build_report
from recbench.store import ResultStore
from recbench.runner import RunOptions, Runner

MODELS = ("random", "most-popular", "item-knn")
CHROMIUM = os.environ.get("RECBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")


@pytest.fixture(scope="module")
def results(tmp_path_factory, registry) -> tuple[Path, dict[str, str]]:
    """A real run: 3 models of 2 families x 2 seeds on tiny synthetic data; and the families."""
    root = tmp_path_factory.mktemp("html-report") / "results"
    exp = Experiment(name="html", datasets=(Component("synthetic", {
        "n_users": 60, "n_items": 30, "mean_per_user": 8}),),
        models=tuple(Component(m) for m in MODELS), seeds=(0, 1),
        protocol=Protocol(metrics=("ndcg", "recall"), ks=(5,)))
    Runner(exp, registry, RunOptions(results_dir=root)).run()
    return root, {m: registry.model(m).family for m in MODELS}


def every_plot_section() -> Section:
    """The critical-difference diagram (its ranks and CD given as plain data)."""
    return critical_difference_section({"ease": 1.3, "item-knn": 1.9, "random": 2.8}, 1.2,
                                       alpha=0.05, n_datasets=10, metric="ndcg@10")


@pytest.fixture(scope="module")
def cli_page(results) -> str:
    """What `recbench report --format html` writes (tables with statistics), with a CD section."""
    root, families = results
    store = ResultStore(root)
    report = build_report(store.records(include_failed=True), store, families)
    return report_html(report, store, title="recbench report", extra=[every_plot_section()])


@pytest.fixture(scope="module")
def report(results) -> str:
    """The report of the run, with a critical-difference section: every kind of plot."""
    root, families = results
    return report_from_results(root, families=families, extra=[every_plot_section()])


def external_references(page: str) -> list[str]:
    """Every src/href (and CSS url()) that is not an embedded data: URI or an in-page anchor."""
    refs = re.findall(r'\b(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', page, flags=re.I)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]*)", page, flags=re.I)
    return [r for r in refs if not r.startswith(("data:", "#"))]


def test_report_from_results_is_self_contained_and_complete(results, report):
    families = results[1]
    page = report
    assert external_references(page) == []
    assert not re.search(r"<script|<link[^>]+stylesheet|@import", page, flags=re.I)
    assert "http://" not in page and "https://" not in page
    assert page.count("<table") == 1 and page.count('<dl class="card">') == 1
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)">', page)
    # accuracy vs cost, by family, per-user values, critical difference
    assert len(images) == page.count("<img") == 4
    assert all(len(alt) > 40 for alt in images)
    for model, family in families.items():
        assert f"<td>{model}</td>" in page and f"<td>{family}</td>" in page
    assert "synthetic (ranking, ratio split)" in page and "ndcg@5" in page


def test_report_lists_what_it_skipped(results, tmp_path):
    root, families = results
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    victim = sorted((copy / "trials").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:40])  # a truncated record
    (copy / "failed").mkdir()
    (copy / "failed" / "f.json").write_text(
        '{"key": "f", "dataset": "synthetic", "model": "bpr", "seed": 0, "status": "failed", '
        '"stage": "fit/evaluate", "error": "FloatingPointError: diverged"}')
    page = report_from_results(copy, families={k: v for k, v in families.items() if k != "random"})
    assert "skipped damaged record" in page and victim.name in page
    assert "failed trial not reported: synthetic / bpr seed 0 (fit/evaluate: FloatingPointError: " \
           "diverged)" in page
    assert "model random: family unknown" in page

    (tmp_path / "empty").mkdir()
    with pytest.raises(RecbenchError, match="holds no successful trial"):
        report_from_results(tmp_path / "empty", families={})
    with pytest.raises(RecbenchError, match="does not exist"):
        report_from_results(tmp_path / "nowhere", families={})


def test_report_html_renders_the_statistics_tables(results, cli_page):
    families = results[1]
    assert external_references(cli_page) == [] and "<script" not in cli_page
    assert cli_page.count("<table>") == 1 and cli_page.count('<dl class="card">') == 1
    assert cli_page.count('<img src="data:image/png;base64,') == 4
    assert "<b>" in cli_page  # the best value of each metric
    for model, family in families.items():
        assert f"<td>{model}</td>" in cli_page and f"<td>{family}</td>" in cli_page
    assert "mean ± std over seeds" in cli_page  # the table's legend


def test_render_html_escapes_text():
    page = render_html([Section("<b>x</b>", {"k": "<i>"}, notes=["a & b"])], title="<script>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "&lt;i&gt;" in page and "a &amp; b" in page


def test_reports_render_in_headless_chromium(results, cli_page, report, tmp_path):
    """Both reports (`recbench report --format html`, and the one straight from the records)."""
    if CHROMIUM is None:
        message = ("no Chromium installed: install Debian's `chromium` package (apt-get install "
                   "chromium; .ci/run does) or set RECBENCH_CHROMIUM to its binary")
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    families = results[1]
    problems: list[str] = []
    seen = {}
    with sync_playwright() as p:
        # The system binary, never a browser downloaded by Playwright; as root it needs no sandbox.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, text in (("cli-report", cli_page), ("records-report", report)):
                path, shot = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
                path.write_text(text, encoding="utf-8")
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                        if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("request", lambda r: problems.append(f"request: {r.url}")
                        if not r.url.startswith(("file:", "data:")) else None)
                page.goto(path.as_uri(), wait_until="load")
                images = page.eval_on_selector_all("img", """imgs => Promise.all(imgs.map(
                    img => img.decode().then(() => [img.alt, img.naturalWidth,
                                                    img.naturalHeight,
                                                    img.getBoundingClientRect().width])))""")
                rows = page.eval_on_selector_all("table tr", "rows => rows.length")
                seen[name] = images, rows, page.inner_text("table"), shot
                page.screenshot(path=str(shot), full_page=True)
                print(f"\nscreenshot of the {name}: {shot}")
                page.close()
        finally:
            browser.close()
    assert problems == []
    for name, (images, rows, cells, shot) in seen.items():
        assert len(images) == 4, name  # accuracy vs cost, by family, per-user, CD diagram
        assert all(w > 100 and h > 100 and shown > 100 for _, w, h, shown in images), images
        assert all(alt for alt, *_ in images)
        assert rows == 1 + len(families)  # header and one row per model
        assert all(m in cells for m in families)
        assert shot.stat().st_size > 10_000
