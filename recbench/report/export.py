"""Report tables rendered: a terminal table, Markdown, LaTeX (booktabs), CSV and JSON.

Every rendering carries the table's protocol card (as lines above it, or the LaTeX caption), shows
the best value of each metric in bold and marks with † the values whose difference to the best is
significant under the paired test and correction the table was built with.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from .card import card_lines
from .leaderboard import COST_COLUMNS, COUNT_COLUMNS
from .ranks import across_datasets, as_dict
from .tables import CONFIDENCE, Report, ReportTable, best_index

SIG_MARK = "†"
TEST_NAMES = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
INTEGER_COLUMNS = ("n_parameters", "peak_host_mb", "peak_device_mb", *COUNT_COLUMNS)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(col: str, value: float) -> str:
    if col in INTEGER_COLUMNS:
        return f"{value:.0f}"
    return f"{value:.2f}" if col in COST_COLUMNS else f"{value:.4f}"


def columns(table: ReportTable) -> list[tuple[str, str]]:
    """(key, header) of the shown columns: model, family, replicates, metrics, CI, costs, users."""
    board = table.board
    out = [("label", "model"), ("family", "family"),
           ("replicates", "seeds × folds" if "folds" in board else "seeds")]
    out += [(m, m) for m in table.metrics]
    if table.primary is not None and f"{table.primary}_ci_low" in board:
        out.append(("ci", f"{table.primary} {int(CONFIDENCE * 100)}% CI"))
    out += [(c, h) for c, h in COST_COLUMNS.items() if c in board]
    out += [(c, h) for c, h in COUNT_COLUMNS.items() if c in board]
    if "device" in board:
        out.append(("device", "device"))
    return out


def cell(table: ReportTable, i: int, key: str, bold: tuple[str, str] = ("", ""),
         mark: str = SIG_MARK, pm: str = "±") -> str:
    """One cell as text; ``bold`` wraps the best value of a metric, ``mark`` follows values that
    differ significantly from the best."""
    board = table.board
    if key == "replicates":
        return (f"{board.at[i, 'seeds']} × {board.at[i, 'folds']}" if "folds" in board
                else str(board.at[i, "seeds"]))
    if key == "ci":
        low, high = board.at[i, f"{table.primary}_ci_low"], board.at[i, f"{table.primary}_ci_high"]
        return "-" if _missing(low) else f"[{low:.4f}, {high:.4f}]"
    value = board.at[i, key]
    if not isinstance(value, (int, float, np.number)):
        return str(value)
    if _missing(value):
        return "-"
    text = _number(key, value)
    if board.at[i, "runs"] > 1 and key not in INTEGER_COLUMNS:
        text += f" {pm} {_number(key, board.at[i, f'{key}_std'])}"
    if key in table.metrics:
        if best_index(board, key, table.directions.get(key)) == i:
            text = f"{bold[0]}{text}{bold[1]}"
        if board.at[i, f"{key}_sig"] is True:
            text += mark
    return text


def legend(table: ReportTable) -> str:
    arrows = ", ".join(f"{m} {'↑' if table.directions.get(m) else '↓'}" for m in table.metrics
                       if table.directions.get(m) is not None)
    sig = (f"{SIG_MARK}: differs from the best (bold) at α = {table.alpha}, "
           f"{TEST_NAMES[table.test]} over users paired by id, "
           f"{CORRECTION_NAMES[table.correction]}-corrected over all pairs"
           if not table.tests.empty else "no paired test: the metrics have no per-user values "
           "(global metrics), or none were stored with user ids")
    return f"mean ± std over seeds (× folds); {arrows}; {sig}"


def title(table: ReportTable) -> str:
    c = table.card
    return f"{c['dataset']} · {c['task']} · split {c['split'].split(' ')[0]} · protocol {table.protocol}"


def to_rich(table: ReportTable) -> Table:
    out = Table(title=title(table), caption=legend(table), caption_justify="left")
    for key, header in columns(table):
        out.add_column(header, justify="left" if key in ("label", "family", "device") else "right")
    for i in range(len(table.board)):
        out.add_row(*(cell(table, i, k, bold=("[bold]", "[/bold]")) for k, _ in columns(table)))
    return out


def table_markdown(table: ReportTable) -> str:
    cols = columns(table)
    lines = [f"### {title(table)}", "", *(f"- {line}" for line in card_lines(table.card)), ""]
    lines += ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for i in range(len(table.board)):
        lines.append("| " + " | ".join(cell(table, i, k, bold=("**", "**"))
                                       for k, _ in cols) + " |")
    lines += ["", legend(table)]
    lines += [f"- note: {n}" for n in table.notes]
    return "\n".join(lines)


def compared_metrics(report: Report) -> list[str]:
    """Metrics measured in at least two tables: those a comparison across datasets can rank."""
    seen: dict[str, int] = {}
    for t in report.tables:
        for m in t.metrics:
            seen[m] = seen.get(m, 0) + 1
    return [m for m, n in seen.items() if n >= 2]


def ranks_markdown(report: Report) -> str:
    lines = []
    for metric in compared_metrics(report):
        result, _ = across_datasets(report, metric)
        if result is None:
            continue
        ranks = ", ".join(f"{m} {r:.2f}" for m, r in result.average_ranks.items())
        lines.append(f"- {metric}: average ranks {ranks}; Friedman χ² = {result.statistic:.2f}, "
                     f"p = {result.pvalue:.3g} over {result.n_blocks} tables; Nemenyi critical "
                     f"difference {result.critical_difference:.2f} at α = {result.alpha}")
    return "### Across datasets (Demšar 2006)\n\n" + "\n".join(lines) if lines else ""


def to_markdown(report: Report) -> str:
    parts = [table_markdown(t) for t in report.tables]
    if ranks := ranks_markdown(report):
        parts.append(ranks)
    if report.notes:
        parts.append("\n".join(f"- skipped: {n}" for n in report.notes))
    return "\n\n".join(parts) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "±": r"$\pm$", "×": r"$\times$", "·": r"$\cdot$",
                  "↑": r"$\uparrow$", "↓": r"$\downarrow$", "α": r"$\alpha$",
                  SIG_MARK: r"$^\dagger$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def table_latex(table: ReportTable) -> str:
    cols = columns(table)
    caption = (f"{title(table)}. " + "; ".join(card_lines(table.card)) + f". {legend(table)}.")
    spec = "".join("l" if k in ("label", "family", "device") else "r" for k, _ in cols)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(caption)}}}", rf"\label{{tab:recbench-{table.protocol}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for _, h in cols) + r" \\", r"\midrule"]
    for i in range(len(table.board)):
        cells = []
        for k, _ in cols:
            text = cell(table, i, k, bold=("\x00", "\x01"), mark="\x02", pm="±")
            text = (latex_escape(text).replace("\x00", r"\textbf{").replace("\x01", "}")
                    .replace("\x02", r"$^\dagger$"))
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def to_latex(report: Report) -> str:
    head = "% recbench report: needs \\usepackage{booktabs}\n"
    body = "\n\n".join(table_latex(t) for t in report.tables)
    skipped = "".join(f"% skipped: {n}\n" for n in report.notes)
    return head + body + "\n" + skipped


def to_frame(report: Report) -> pd.DataFrame:
    """Every table's board in one long frame (``model`` is the row's label, ``plugin`` the model
    plugin), each row labelled with its protocol: dataset, task, split, recbench version, and
    which interval its ``*_ci_low`` / ``*_ci_high`` columns are (``interval``, the card's)."""
    frames = []
    for t in report.tables:
        c = t.card
        frames.append(t.board.drop(columns=["keys"])
                      .rename(columns={"model": "plugin", "label": "model"})
                      .assign(dataset=c["dataset"], task=c["task"], split=c["split"],
                              recbench=c["recbench"], protocol=t.protocol,
                              interval=c.get("interval", "")))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    first = ["dataset", "model", "seeds"]
    return out[first + [c for c in out.columns if c not in first]]


def to_csv(report: Report) -> str:
    return to_frame(report).to_csv(index=False)


def to_rows_json(report: Report) -> str:
    """The rows of every table as one JSON list (the leaderboard's ``--format json``), each row
    labelled with its protocol; :func:`to_json` adds the cards and the tests."""
    return json.dumps(_jsonable(to_frame(report)), indent=1)


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records")) if not frame.empty else []


def to_json(report: Report) -> str:
    tables = [{"protocol": t.protocol, "card": t.card, "primary": t.primary, "test": t.test,
               "correction": t.correction, "alpha": t.alpha,
               "rows": _jsonable(t.board), "tests": _jsonable(t.tests), "notes": t.notes}
              for t in report.tables]
    across = {}
    for metric in compared_metrics(report):
        result, _ = across_datasets(report, metric)
        if result is not None:
            across[metric] = as_dict(result)
    return json.dumps({"tables": tables, "across_datasets": across, "skipped": report.notes},
                      indent=1, default=str)
