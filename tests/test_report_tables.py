"""Report tables from a real results directory: one table per protocol under its card, seeds
aggregated with bootstrap intervals, paired tests by user id, exports, and bad input reported."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

from recbench.cli.main import main
from recbench.config import Experiment, from_mapping
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.report.leaderboard import protocol_of
from recbench.report.export import to_csv, to_json, to_latex, to_markdown, to_rows_json
from recbench.report.ranks import across_datasets
from recbench.report.stats import critical_difference, runs_t_interval
from recbench.report.tables import build_report
from recbench.runner import RunOptions, Runner
from recbench.store import USER_IDS, ResultStore

TINY = {"n_users": 120, "n_items": 40, "mean_per_user": 10}
MODELS = [{"name": "random"}, {"name": "most-popular"}, {"name": "item-knn"}]


def _experiment(ratios):
    return from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": TINY}], "models": MODELS, "seeds": [0, 1],
        "protocol": {"metrics": ["ndcg", "recall"], "ks": [5],
                     "split": {"name": "ratio", "config": {"ratios": ratios}}}})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One results directory holding two protocols (two splits) of three models x two seeds."""
    root = tmp_path_factory.mktemp("report") / "results"
    reg = Registry.build(load_plugins(allow=set()))
    for ratios in ([0.8, 0.1, 0.1], [0.6, 0.1, 0.3]):
        Runner(_experiment(ratios), reg, RunOptions(root)).run()
    return root


@pytest.fixture(scope="module")
def default_report(results):
    """The report of ``results`` with the default options (built once: Holm's correction in
    statsmodels runs a full garbage collection per call)."""
    return _report(results, families={"random": "baseline", "most-popular": "baseline",
                                      "item-knn": "cf-item"})


@pytest.fixture
def copy_of(results, tmp_path):
    def make():
        dest = tmp_path / "copy"
        shutil.copytree(results, dest)
        return dest
    return make


def _report(root, **kw):
    store = ResultStore(root)
    return build_report(store.records(include_failed=True), store, **kw), store


def test_one_table_per_protocol_under_its_card(default_report):
    report, _ = default_report
    assert len(report.tables) == 2 and not report.notes
    splits = sorted(t.card["split"] for t in report.tables)
    assert splits == ['ratio {"ratios":[0.6,0.1,0.3]}', 'ratio {"ratios":[0.8,0.1,0.1]}']
    for table in report.tables:
        board = table.board
        assert list(board["label"]).count("item-knn") == 1  # no hash suffix within a protocol
        assert (board["seeds"] == 2).all() and (board["runs"] == 2).all()
        card = table.card
        assert card["seeds"] == [0, 1] and len(card["split_fingerprints"]) == 2
        assert card["dataset_checksum"] and card["history"] == "train"
        assert "full ranking over all 40 items" in card["candidate_set"]
        # Best first by ndcg@5 (higher is better), the mean inside its 95% bootstrap interval.
        assert board["ndcg@5"].is_monotonic_decreasing
        assert ((board["ndcg@5_ci_low"] <= board["ndcg@5"])
                & (board["ndcg@5"] <= board["ndcg@5_ci_high"])).all()
        assert card["interval"].startswith("95% percentile bootstrap over users")
        assert dict(zip(board["label"], board["family"]))["item-knn"] == "cf-item"
        for cost in ("fit_s", "compile_s", "eval_s", "peak_host_mb", "n_parameters"):
            assert board[cost].notna().all(), cost
        assert board["device"].str.startswith("cpu:").all()


def test_paired_tests_cover_every_pair_and_mark_differences_to_the_best(default_report):
    report, store = default_report
    table = report.tables[0]
    tests = table.tests
    assert len(tests) == 2 * 3  # 2 metrics x 3 pairs, Holm over each metric's 3 pairs
    # Users paired by id within each seed; each user once, with their mean over both seeds.
    evaluated = {int(u) for r in store.records()
                 if r["model"] == "random" and protocol_of(r) == table.protocol
                 for u in store.user_ids(r["key"])}
    assert (tests["n"] == len(evaluated)).all() and (tests["replicates"] == 2).all()
    assert {"p_ttest", "p_wilcoxon", "p_adjusted", "d_z"} <= set(tests.columns)
    assert (tests["p_adjusted"] >= tests["p_ttest"]).all()
    board = table.board.set_index("label")
    assert board.loc["random", "ndcg@5_sig"] is True  # random is far below the best
    assert board.iloc[0]["ndcg@5_sig"] is None  # the best row itself


def test_exports_carry_the_card_bold_best_and_marks(default_report):
    report, _ = default_report
    md = to_markdown(report)
    assert md.count("### synthetic · ranking") == 2 and "- candidates: full ranking" in md
    assert "**" in md and "†" in md and "Holm-corrected" in md
    tex = to_latex(report)
    assert tex.count(r"\toprule") == 2 and r"\textbf{" in tex and r"$^\dagger$" in tex
    assert r"\caption{synthetic" in tex and "fingerprints" in tex
    assert "_" not in tex.replace(r"\_", "")  # every underscore escaped
    assert to_csv(report).startswith("dataset,model,seeds,")
    doc = json.loads(to_json(report))
    assert len(doc["tables"]) == 2 and doc["tables"][0]["card"]["seeds"] == [0, 1]
    assert doc["tables"][0]["tests"][0]["metric"] == "ndcg@5"


def test_bh_correction_and_wilcoxon_are_options(results):
    report, _ = _report(results, test="wilcoxon", correction="bh")
    table = report.tables[0]
    assert table.test == "wilcoxon" and table.correction == "bh"
    # The family comes from the record itself (no registry given here).
    assert dict(zip(table.board["label"], table.board["family"]))["item-knn"] == "cf-item"
    assert "Wilcoxon" in to_markdown(report) and "Benjamini-Hochberg" in to_markdown(report)


def test_runs_interval_is_the_student_t_interval_of_the_runs_means(results, capsys):
    from statsmodels.stats.weightstats import DescrStatsW  # the independent reference

    report, store = _report(results, interval="runs")
    means = {r["key"]: r["metrics"] for r in store.records()}
    for table in report.tables:
        assert table.card["interval"].startswith("95% Student t interval over each row's runs")
        for _, row in table.board.iterrows():
            for metric in ("ndcg@5", "recall@5"):
                values = np.array([means[k][metric] for k in row["keys"]])
                low, high = DescrStatsW(values).tconfint_mean(alpha=0.05)
                assert (row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]) == pytest.approx(
                    (low, high), abs=1e-12)
    assert (report.tables[0].board["ndcg@5_ci_high"] > report.tables[0].board["ndcg@5_ci_low"]).any()
    rows = json.loads(to_rows_json(report))
    assert {r["interval"] for r in rows} == {report.tables[0].card["interval"]}
    assert np.isnan(runs_t_interval(np.array([0.3]))).all()  # one run: no interval
    assert runs_t_interval(np.array([0.2, np.nan, 0.4])) == pytest.approx(
        DescrStatsW(np.array([0.2, 0.4])).tconfint_mean(alpha=0.05))  # NaN runs left out
    assert runs_t_interval(np.array([0.2, 0.2, 0.2])) == (0.2, 0.2)
    assert main(["leaderboard", str(results), "--format", "markdown", "--interval", "runs"]) == 0
    assert capsys.readouterr().out.count("CI: 95% Student t interval") == 2


def _rewrite_per_user(store, key, change):
    """Replace a trial's per-user file by ``change(values)``, keeping its record consistent."""
    record = store.get(key)
    values = {**store.per_user(key)}
    ids = store.user_ids(key)
    if ids is not None:
        values[USER_IDS] = ids
    values = change(values)
    (store.trials / record["files"]["per_user"]).unlink()
    (store.trials / f"{key}.json").unlink()
    del record["files"]
    store._verified.pop(key, None)
    store.put(record, values)


def test_records_without_ids_or_on_other_users_are_not_tested_as_paired(copy_of):
    root = copy_of()
    store = ResultStore(root)
    recs = sorted((r for r in store.records() if r["model"] == "random"), key=lambda r: r["key"])
    # One replicate of each table (protocol) is broken, so each table keeps one that pairs.
    by_table = {}
    for r in recs:
        by_table.setdefault(protocol_of(r), r["key"])
    old, other = sorted(by_table.values())
    _rewrite_per_user(store, old, lambda v: {k: x for k, x in v.items() if k != USER_IDS})
    _rewrite_per_user(store, other, lambda v: {**v, USER_IDS: v[USER_IDS] + 1000})
    report, _ = _report(root)
    notes = " ".join(n for t in report.tables for n in t.notes)
    assert "without user ids" in notes and "different users" in notes
    # The replicates that still pair are tested; the others are named as left out.
    assert "some replicates left out" in notes


def test_bad_input_is_reported_never_averaged(copy_of):
    root = copy_of()
    store = ResultStore(root)
    records = list(store.records())
    # A model that failed on one seed, a corrupt record, records of another recbench version.
    victim = records[0]
    failed = {k: victim[k] for k in ("dataset", "model", "identity")}
    failed.update(key="f" * 32, seed=7, status="failed", stage="fit/evaluate",
                  error="FloatingPointError: diverged", traceback="")
    store.put(failed)
    (store.trials / f"{records[1]['key']}.json").write_text('{"key": "trunc')
    newer = copy.deepcopy(records[2])
    newer["identity"]["recbench"] = "9.9.9"
    newer["key"] = "e" * 32
    newer.pop("files")
    store.put(newer, {"ndcg@5": np.zeros(3), USER_IDS: np.arange(3)})
    report, fresh = _report(root)
    assert any("failed trial left out" in n and "seed 7" in n and "diverged" in n
               for n in report.notes)
    assert any("recbench versions 0.1.0, 9.9.9" in n for n in report.notes)
    assert len(fresh.unreadable) == 1 and "moved to" in fresh.unreadable[0]
    assert len(report.tables) == 3  # the other version's trial has a table of its own
    table = next(t for t in report.tables if t.protocol == protocol_of(records[1]))
    assert f"{records[1]['model']}: 1 of 2 runs" in " ".join(table.notes)  # the corrupt one's row
    assert sorted(t.card["recbench"] for t in report.tables) == ["0.1.0", "0.1.0", "9.9.9"]


def test_an_empty_results_dir_has_no_table(tmp_path):
    report, _ = _report(tmp_path)
    assert report.tables == [] and report.notes == []


def test_cli_leaderboard_and_report(results, tmp_path, capsys):
    assert main(["leaderboard", str(results), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.count("### synthetic") == 2 and "| model | family |" in out
    assert main(["leaderboard", str(results), "--format", "json", "--test", "wilcoxon"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and len({r["protocol"] for r in rows}) == 2
    target = tmp_path / "table.tex"
    assert main(["report", str(results), "--format", "latex", "-o", str(target),
                 "--correction", "bh"]) == 0
    assert target.read_text().count(r"\begin{table}") == 2
    page = tmp_path / "report.html"
    assert main(["report", str(results), "--format", "html", "-o", str(page)]) == 0
    text = page.read_text()
    assert text.count("<table>") == 2 and text.count('<dl class="card">') == 2
    assert text.count('<img src="data:image/png;base64,') >= 4  # plots of both tables
    assert main(["leaderboard", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_models_ranked_across_tables_with_demsars_critical_difference(default_report):
    report, _ = default_report
    # One dataset under two protocols is not two datasets: no comparison, and the note says why.
    result, notes = across_datasets(report, "ndcg@5")
    assert result is None and "measured under 2 protocols" in notes[0]
    report = copy.deepcopy(report)
    report.tables[1].card["dataset"] = "another dataset"
    result, notes = across_datasets(report, "ndcg@5")
    assert not notes and result.n_blocks == 2
    assert set(result.average_ranks.index) == {"random", "most-popular", "item-knn"}
    assert result.average_ranks["random"] == 3.0  # last on both
    assert result.critical_difference == pytest.approx(critical_difference(3, 2))
    assert "Across datasets" in to_markdown(report)
    assert "ndcg@5" in json.loads(to_json(report))["across_datasets"]
    single = type(report)(report.tables[:1], [])
    assert across_datasets(single, "ndcg@5")[0] is None


def test_cite_gives_bibtex_for_recbench_and_each_dataset_and_the_provenance(results, capsys):
    from pathlib import Path

    from recbench import __version__
    from recbench.report.cite import TITLE, cite

    cff = (Path(__file__).resolve().parents[1] / "CITATION.cff").read_text()
    assert f'title: "{TITLE}"' in cff and f'version: "{__version__}"' in cff
    reg = Registry.build(load_plugins(allow=set()))
    records = list(ResultStore(results).records())
    text = cite(records, lambda name: reg.dataset("online-retail").card)
    assert text.startswith("@software{recbench,") and "@article{chen2012online," in text
    assert "% versions: python" in text and "% hardware: platform cpu" in text
    assert sum(line.startswith("% trial ") for line in text.splitlines()) == len(records)
    assert main(["cite", str(results)]) == 0
    out = capsys.readouterr().out
    assert "% dataset: synthetic" in out and "% model item-knn: item-knn {" in out
    assert reg.dataset("ml-100k").card.bibtex.startswith("@article{harper2015movielens")


def test_compare_plans_one_model_per_family_from_the_registry_and_labels_columns(default_report):
    from dataclasses import dataclass

    from recbench import ModelSpec, hookimpl
    from recbench.config import Component
    from recbench.data import Dataset, FeatureTable, Interactions
    from recbench.light import LIGHT
    from recbench.report import compare

    @dataclass(frozen=True)
    class Cfg:
        epochs: int = 50

    class GraphPlugin:  # a third party's new family appears without any change to compare
        @hookimpl
        def register_models(self):
            return [ModelSpec("lightgraph", "x-graph", frozenset({"ranking"}), lambda c, x: None,
                              config=Cfg)]

    reg = Registry.build(load_plugins(allow=set(), objects=(GraphPlugin(),)))
    ds = Dataset("tiny", Interactions([0, 1], [1, 0], 2, 2), np.arange(2), np.arange(2),
                 FeatureTable(np.eye(2, dtype=np.float32), ("a", "b")), checksum="x")
    planned, notes = compare.grid(reg, Component("tiny"), ds)
    assert [p.name for p in planned] == ["ranking", "cold-start", "binary"]
    assert "protocol rating: tiny has no ratings, so no rating error" in notes
    ranking = {m.name: m for m in planned[0].experiment.models}
    families = {reg.model(n).family for n in ranking}
    assert len(families) == len(ranking) and "x-graph" in families  # one per family
    # The light grid names the built-ins; a family it does not know gets its cheapest, capped.
    assert set(ranking) - {"lightgraph"} == {
        n for n in compare.LIGHT_GRID["ranking"] if not reg.model(n).requires - {"item_features"}}
    assert ranking["lightgraph"].config == {"epochs": 3}
    assert ranking["lightgraph"].display == "lightgraph (3 epochs)"
    assert ranking["ials"].config == LIGHT["ials"][0] and "light" in ranking["ials"].display
    assert any("gru4rec: needs timestamps" in n for n in notes)
    assert any(n.startswith("light grid: family cnn left out") for n in notes)  # never silent
    cold = {m.name for m in planned[1].experiment.models}
    assert {"content-knn", "lightgraph"} <= cold  # the cold-start grid, and the new family
    chosen, _ = compare.grid(reg, Component("tiny"), ds, only=("ials", "bpr", "ease"))
    # Per family among the chosen, the smallest declared training budget: iALS (15) before BPR.
    assert {m.name for m in chosen[0].experiment.models} == {"ials", "ease"}
    every, _ = compare.grid(reg, Component("tiny"), ds, all_models=True, full=True)
    assert len(every[0].experiment.models) > len(ranking)
    assert all(not m.config for m in every[0].experiment.models)

    report, _ = default_report
    ids = {"ranking": report.tables[0].protocol, "narrow": report.tables[1].protocol}
    table = compare.comparison(report, ids)
    assert {"ndcg@5 (ranking)", "ndcg@5 (narrow)", "fit s"} <= set(table.columns)
    assert list(table["family"]) == sorted(table["family"], key=compare.family_order)
    assert table["ndcg@5 (ranking)"].str.contains(r"\*\*").sum() == 1  # the best, in bold
    best = compare.by_family(report, ids)
    assert set(best["family"]) == {"baseline", "cf-item"}
    assert best.set_index("family").at["cf-item", "ndcg@5 (ranking)"].endswith("(item-knn)")


def test_compare_command_on_a_small_dataset(tmp_path, capsys):
    args = ["compare", "--dataset", "synthetic", "--protocol", "ranking", "--protocol", "binary",
            "--model", "random", "--model", "most-popular", "--model", "item-knn",
            "--results", str(tmp_path / "cmp"), "--format", "json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    models = {m["model"]: m for m in out["models"]}
    assert set(models) == {"most-popular", "item-knn"}  # one per family: random is baseline too
    assert models["most-popular"]["roc_auc (binary)"] != "-"
    assert models["item-knn"]["roc_auc (binary)"] == "-"  # item-knn serves no binary task
    assert "ndcg@10 (ranking)" in models["item-knn"] and "fit s" in models["item-knn"]
    assert out["protocols"]["binary"]["task"] == "binary"
    assert main([*args[:-1], "markdown", "-q"]) == 0  # read from the store this time
    captured = capsys.readouterr()
    assert "## Best model per family" in captured.out and "**binary**" in captured.out
    assert "- CI: " not in captured.out  # no interval column, so no interval line on its cards
    assert "[1/" not in captured.err


def test_the_light_grid_names_registered_models_under_valid_light_settings():
    """Every light setting is a valid config of its model, and every model of the default
    comparison that trains for epochs has one (a full-settings model would blow its budget)."""
    import dataclasses

    from recbench.light import LIGHT
    from recbench.report import compare

    reg = Registry.build(load_plugins(allow=set()))
    for name, (config, what) in LIGHT.items():
        from_mapping(reg.model(name).config, dict(config), f"light {name}")  # raises if invalid
        assert what and compare.setting(reg, name).display == f"{name} (light: {what})"
    for protocol, names in compare.LIGHT_GRID.items():
        assert protocol in compare.PROTOCOLS
        for name in names:
            spec = reg.model(name)
            assert compare.PROTOCOLS[protocol].task in spec.tasks, (protocol, name)
            epochs = any(f.name == "epochs" for f in dataclasses.fields(spec.config))
            assert name in LIGHT or not epochs, name
            assert spec.cold_items or compare.PROTOCOLS[protocol].candidates != "cold", name
    covered = {reg.model(n).family for names in compare.LIGHT_GRID.values() for n in names}
    assert not covered & set(compare.LIGHT_GRID_LEAVES_OUT)
