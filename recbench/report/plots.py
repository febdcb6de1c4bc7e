"""The report's plots: accuracy vs cost with the Pareto front, per-family comparison, per-user
metric distributions and the critical-difference diagram (Demšar 2006).

Each function takes plain data (a pandas DataFrame, dicts, arrays) and returns a
:class:`matplotlib.figure.Figure`, built without pyplot (no global figure registry, no interactive
backend: PNGs are drawn by Agg). :func:`png` encodes one. The output is deterministic: fixed style
and sizes, and no timestamp or version in the PNG's metadata, so the same data gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib
import matplotlib.style
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..specs import FAMILIES

# Independent of the user's matplotlibrc: the same data draws the same picture everywhere.
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "figure.dpi": 100, "savefig.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False}
# Costs below this are drawn at it: a log axis cannot show 0 s (the random baseline's fit).
COST_FLOOR_S = 1e-3
LABEL_WIDTH = 30  # characters per line of a model label (a light config's label is long)


def wrap(label: str) -> str:
    """A long model label on several lines, so that it does not squeeze the axes."""
    return textwrap.fill(label, LABEL_WIDTH, break_long_words=False)


def _lines(labels: Sequence[str]) -> int:
    return sum(label.count("\n") + 1 for label in labels)


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        yield


def family_colors(families: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per family, fixed by the family's place in FAMILIES (plugin families after), so a
    family keeps its colour across plots and reports: tab10, then the light half of tab20."""
    known = list(FAMILIES) + sorted(set(families) - set(FAMILIES))
    tab10, tab20 = matplotlib.colormaps["tab10"], matplotlib.colormaps["tab20"]
    palette = [tab10(i) for i in range(10)] + [tab20(2 * i + 1) for i in range(10)]
    return {f: palette[known.index(f) % len(palette)] for f in families}


def pareto_front(cost: Sequence[float], score: Sequence[float], higher_is_better: bool = True
                 ) -> np.ndarray:
    """Boolean mask of the points no other point beats: nobody is at most as costly and strictly
    better, or strictly cheaper and at least as good."""
    cost = np.asarray(cost, dtype=float)
    good = np.asarray(score, dtype=float) * (1.0 if higher_is_better else -1.0)
    front = np.zeros(len(cost), dtype=bool)
    best = -np.inf
    for i in np.lexsort((-good, cost)):  # cheapest first; among equal costs the best first
        if good[i] > best:
            front[i], best = True, good[i]
    return front


def accuracy_vs_cost(board: pd.DataFrame, metric: str, *, cost: str = "fit_s",
                     higher_is_better: bool = True, cost_label: str = "fit time (s)",
                     title: str | None = None) -> Figure:
    """One point per model (``board``: one row per model, columns ``model``, ``metric``, ``cost``
    and optionally ``family``), cost on a log axis, the Pareto front joined by a line (its points
    are the collection labelled ``"pareto front"``)."""
    board = board.dropna(subset=[metric, cost]).reset_index(drop=True)
    x = np.maximum(board[cost].to_numpy(float), COST_FLOOR_S)
    y = board[metric].to_numpy(float)
    families = board["family"].tolist() if "family" in board else ["model"] * len(board)
    colors = family_colors(sorted(set(families)))
    front = pareto_front(x, y, higher_is_better)
    with _style():
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for family in sorted(set(families)):
            rows = [i for i, f in enumerate(families) if f == family]
            ax.scatter(x[rows], y[rows], s=36, color=colors[family], label=family, zorder=3)
        order = np.flatnonzero(front)[np.argsort(x[front])]
        ax.plot(x[order], y[order], color="black", lw=1, ls="--", zorder=2)
        ax.scatter(x[order], y[order], s=110, facecolors="none", edgecolors="black", lw=1.2,
                   zorder=4, label="pareto front")
        # Labels alternate above and below along the cost axis: neighbours do not overprint.
        for n, i in enumerate(np.argsort(x, kind="stable")):
            above = n % 2 == 0
            ax.annotate(wrap(board["model"][i]), (x[i], y[i]), xytext=(4, 4 if above else -4),
                        textcoords="offset points", fontsize=7,
                        va="bottom" if above else "top")
        ax.set_xscale("log")
        # Whole decades: at least two labelled major ticks, and no crowded minor-tick labels
        # (matplotlib labels minor ticks when the range is under about a decade).
        if len(x):
            ax.set_xlim(10.0 ** np.floor(np.log10(x.min() / 1.5)),
                        10.0 ** np.ceil(np.log10(x.max() * 1.5)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        floored = bool((board[cost] < COST_FLOOR_S).any())
        floor = f" (below {COST_FLOOR_S:g} s drawn at {COST_FLOOR_S:g} s)" if floored else ""
        ax.set_xlabel(f"{cost_label}, log scale{floor}")
        ax.set_ylabel(f"{metric} ({'higher' if higher_is_better else 'lower'} is better)")
        ax.set_title(title or f"{metric} vs {cost_label}")
        ax.legend(loc="best", frameon=False)
    return fig


def by_family(board: pd.DataFrame, metric: str, *, higher_is_better: bool = True,
              title: str | None = None) -> Figure:
    """A dot per model, grouped by family (``board``: columns ``model``, ``family``, ``metric`` and
    optionally ``<metric>_std``, drawn as error bars where known); the best model of each family
    first, families ordered by their best model. Dots, not bars: a bar's length from 0 would
    mislead for metrics such as RMSE whose values all lie near one another."""
    board = board.dropna(subset=[metric]).copy()
    sign = -1.0 if higher_is_better else 1.0
    board["_key"] = sign * board[metric]
    best = board.groupby("family")["_key"].min().sort_values(kind="stable")
    board["_family_rank"] = board["family"].map({f: i for i, f in enumerate(best.index)})
    board = board.sort_values(["_family_rank", "_key"], kind="stable").reset_index(drop=True)
    colors = family_colors(list(best.index))
    std = board[f"{metric}_std"].to_numpy(float) if f"{metric}_std" in board else None
    has_std = std is not None and bool(np.isfinite(std).any())
    with _style():
        ticks = [wrap(f"{m}  [{f}]") for m, f in zip(board["model"], board["family"])]
        fig = Figure(figsize=(6.4, 0.9 + 0.3 * _lines(ticks)), layout="constrained")
        ax = fig.add_subplot()
        ypos = np.arange(len(board))[::-1]  # first row on top
        for family in best.index:
            rows = np.flatnonzero(board["family"].to_numpy() == family)
            ax.errorbar(board[metric].to_numpy(float)[rows], ypos[rows],
                        xerr=np.nan_to_num(std[rows]) if has_std else None, fmt="o",
                        color=colors[family], capsize=3, markersize=6, label=family)
        for edge in np.flatnonzero(np.diff(board["_family_rank"].to_numpy()))[::1]:
            ax.axhline(ypos[edge] - 0.5, color="grey", lw=0.6)  # between two families
        ax.set_yticks(ypos, ticks)
        ax.set_ylim(-0.6, len(board) - 0.4)
        ax.set_xlabel(f"{metric} ({'higher' if higher_is_better else 'lower'} is better)"
                      + (", error bars: std over runs" if has_std else ""))
        ax.set_title(title or f"{metric} by model family")
        ax.grid(axis="y", visible=False)
    return fig


def per_user_distribution(values: Mapping[str, np.ndarray], metric: str, *,
                          title: str | None = None) -> Figure:
    """One box per model of its per-user values (whiskers at 1.5 IQR, outliers not drawn: thousands
    of users would hide the boxes), the mean as a white diamond, the user count in the label."""
    names = list(values)
    data = [np.asarray(values[n], dtype=float) for n in names]
    with _style():
        ticks = [wrap(f"{n} (n={len(d)})") for n, d in zip(names, data)]
        fig = Figure(figsize=(6.4, 0.9 + 0.3 * _lines(ticks) + 0.06 * len(names)),
                     layout="constrained")
        ax = fig.add_subplot()
        ax.boxplot(data[::-1], orientation="horizontal", showfliers=False, showmeans=True,
                   widths=0.6, tick_labels=ticks[::-1],
                   meanprops={"marker": "D", "markerfacecolor": "white",
                              "markeredgecolor": "black", "markersize": 5},
                   medianprops={"color": "tab:orange"})
        ax.set_xlabel(f"per-user {metric}\n(box: quartiles, line: median, diamond: mean)")
        ax.set_title(title or f"per-user {metric}")
        ax.grid(axis="y", visible=False)
    return fig


def cliques(ranks: Sequence[float], cd: float) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last)`` of the sorted ``ranks`` spanning less than ``cd``: groups of
    models whose average ranks do not differ significantly (Demšar 2006, section 3.2.2)."""
    r = np.sort(np.asarray(ranks, dtype=float))
    out: list[tuple[int, int]] = []
    for i in range(len(r)):
        j = int(np.searchsorted(r, r[i] + cd, side="left")) - 1
        if j > i and (not out or j > out[-1][1]):
            out.append((i, j))
    return out


def critical_difference(ranks: Mapping[str, float], cd: float, *, title: str | None = None,
                        alpha: float | None = None) -> Figure:
    """Demšar's critical-difference diagram: the average rank of each model on an axis from 1
    (best) to k, the CD as a bar above it, and a thick line under each group of models whose ranks
    differ by less than the CD (not significantly different)."""
    names = sorted(ranks, key=lambda n: (ranks[n], n))
    r = np.array([ranks[n] for n in names], dtype=float)
    k = len(names)
    half = (k + 1) // 2  # the better half is labelled on the left, the rest on the right
    groups = cliques(r, cd)
    with _style():
        fig = Figure(figsize=(6.4, 1.6 + 0.28 * (half + len(groups))), layout="constrained")
        ax = fig.add_subplot()
        ax.set_axis_off()
        low, high = 1, max(k, int(np.ceil(r.max())))
        ax.set_xlim(low - 0.9, high + 0.9)
        ax.set_ylim(-(half + 1.2) * 0.5 - 0.3 * len(groups), 1.6)
        ax.hlines(0, low, high, color="black", lw=1)
        for t in range(low, high + 1):
            ax.vlines(t, 0, 0.12, color="black", lw=1)
            ax.text(t, 0.22, str(t), ha="center", va="bottom", fontsize=8)
        ax.text((low + high) / 2, 0.55, "average rank (1 = best)", ha="center", fontsize=8)
        ax.hlines(1.2, low, low + cd, color="tab:red", lw=2, label="critical difference")
        ax.text(low + cd / 2, 1.3, f"CD = {cd:.2f}" + (f" (α = {alpha:g})" if alpha else ""),
                ha="center", va="bottom", fontsize=8, color="tab:red")
        for i, (name, rank) in enumerate(zip(names, r)):
            left = i < half
            row = i if left else k - 1 - i
            y = -(row + 1) * 0.5 - 0.3 * len(groups)
            x_text = low - 0.8 if left else high + 0.8
            ax.plot([rank, rank, x_text], [0, y, y], color="black", lw=0.8)
            ax.text(x_text, y + 0.05, f"{name} ({rank:.2f})", ha="left" if left else "right",
                    va="bottom", fontsize=8)
        for g, (i, j) in enumerate(groups):
            y = -0.18 - 0.3 * g
            ax.hlines(y, r[i] - 0.03, r[j] + 0.03, color="black", lw=3)
        ax.set_title(title or "critical-difference diagram (Nemenyi)")
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no metadata: the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def data_uri(png_bytes: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URI, to embed in a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")
