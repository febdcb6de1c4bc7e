"""The reference leaderboards in results/ come from their `recbench run` commands: one small reference
experiment is rerun through the CLI and must give the stored table's digits exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from recbench.cli.main import main
from recbench.config import load_experiment

RESULTS = Path(__file__).resolve().parents[1] / "results"
README = RESULTS / "README.md"


def stored_table(experiment_file: str) -> dict[str, dict[str, str]]:
    """The Markdown table that follows the ``recbench run results/<experiment_file>`` command in
    results/README.md, as model -> column header -> cell text."""
    lines = README.read_text().splitlines()
    command = f"recbench run results/{experiment_file}"
    starts = [i for i, line in enumerate(lines) if command in line]
    assert starts, f"results/README.md shows no `{command}` command"
    rows = []
    for line in lines[starts[0]:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return parse_rows(rows)


def parse_rows(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    header, body = rows[0], [r for r in rows[2:]]  # rows[1] is the |---| separator
    # The best value's bold and the significance mark are not part of the digits compared.
    body = [[cell.replace("**", "").rstrip("†") for cell in row] for row in body]
    return {row[header.index("model")]: dict(zip(header, row)) for row in body}


def markdown_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def metric_headers(experiment_file: str) -> list[str]:
    p = load_experiment(RESULTS / experiment_file).protocol
    return [f"{m}@{k}" for m in p.metrics for k in p.ks] if p.task == "ranking" else list(p.metrics)


def test_stored_table_parser_reads_the_cells_under_the_command():
    table = stored_table("ml-100k-holdout.toml")
    assert {"most-popular", "item-knn", "user-knn"} <= set(table)
    assert all(" ± " in table["item-knn"][h] for h in metric_headers("ml-100k-holdout.toml"))


@pytest.mark.shared_data("ml-100k")
def test_holdout_table_rows_reproduce_to_the_digit(shared_data, tmp_path, capsys):
    # The most-popular and item-kNN rows of the ML-100K hold-out table: all 5 seeds, so the
    # mean ± std cells can be compared; the full table belongs to its command in results/README.md.
    data = shared_data("ml-100k")
    experiment = "ml-100k-holdout.toml"
    code = main(["run", str(RESULTS / experiment), "--model", "most-popular", "--model", "item-knn",
                 "--data-dir", str(data), "--results", str(tmp_path / "results"),
                 "--format", "markdown"])
    assert code == 0
    rerun = parse_rows(markdown_rows(capsys.readouterr().out))
    stored = stored_table(experiment)
    assert set(rerun) == {"most-popular", "item-knn"}
    for model, cells in rerun.items():
        for header in ["seeds", *metric_headers(experiment)]:
            assert cells[header] == stored[model][header], (model, header)
