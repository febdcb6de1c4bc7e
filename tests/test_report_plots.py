"""The report's plots: the Pareto front, the artists each plot draws, Demšar's cliques on the worked
example of his paper, and deterministic PNG bytes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from recbench.report import plots

BOARD = pd.DataFrame({
    "model": ["random", "most-popular", "item-knn", "ease", "bpr"],
    "family": ["baseline", "baseline", "cf-item", "cf-item", "latent-factor"],
    "ndcg@10": [0.003, 0.035, 0.160, 0.190, 0.119],
    "ndcg@10_std": [0.001, np.nan, 0.004, 0.002, 0.010],
    "fit_s": [0.0, 0.016, 0.76, 2.9, 22.3],
})


def test_pareto_front_keeps_only_the_undominated_points():
    cost = [1.0, 2.0, 2.0, 3.0, 0.5, 4.0]
    score = [0.5, 0.7, 0.6, 0.7, 0.1, 0.9]
    # (2, 0.6) loses to (2, 0.7); (3, 0.7) is as good as (2, 0.7) but costlier.
    assert plots.pareto_front(cost, score).tolist() == [True, True, False, False, True, True]
    # Lower is better (an error): the cheapest is best here, nothing else is on the front.
    assert plots.pareto_front([1, 2, 3], [0.9, 0.95, 0.8], higher_is_better=False).tolist() == [
        True, False, True]


def collection(fig: Figure, label: str):
    [found] = [c for c in fig.axes[0].collections if c.get_label() == label]
    return found


def test_accuracy_vs_cost_circles_the_front_and_floors_zero_costs():
    fig = plots.accuracy_vs_cost(BOARD, "ndcg@10")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    front = collection(fig, "pareto front").get_offsets()
    # bpr is costlier and worse than ease: off the front; random's 0 s is drawn at the floor.
    assert np.allclose(front, [[plots.COST_FLOOR_S, 0.003], [0.016, 0.035], [0.76, 0.160],
                               [2.9, 0.190]])
    assert "drawn at 0.001 s" in ax.get_xlabel() and "higher is better" in ax.get_ylabel()
    assert {t.get_text() for t in ax.texts} == set(BOARD["model"])
    families = {c.get_label() for c in ax.collections} - {"pareto front"}
    assert families == {"baseline", "cf-item", "latent-factor"}


def test_by_family_groups_models_best_family_first():
    fig = plots.by_family(BOARD, "ndcg@10")
    ax = fig.axes[0]
    ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])  # top row first
    assert [t.get_text() for t in ticks] == [
        "ease  [cf-item]", "item-knn  [cf-item]", "bpr  [latent-factor]",
        "most-popular  [baseline]", "random  [baseline]"]
    assert [c.get_label() for c in ax.containers] == ["cf-item", "latent-factor", "baseline"]
    assert "std over runs" in ax.get_xlabel()
    # Lower is better: the smallest error first.
    errors = BOARD.assign(rmse=[1.2, 1.0, 0.92, 0.91, 0.95]).drop(columns="ndcg@10_std")
    ax = plots.by_family(errors, "rmse", higher_is_better=False).axes[0]
    top = max(ax.get_yticklabels(), key=lambda t: t.get_position()[1])
    assert top.get_text() == "ease  [cf-item]" and "std" not in ax.get_xlabel()


def test_per_user_distribution_draws_one_box_and_mean_per_model():
    rng = np.random.default_rng(0)
    values = {"ease": rng.random(50), "random": rng.random(30) / 10}
    ax = plots.per_user_distribution(values, "ndcg@10").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["random (n=30)", "ease (n=50)"]
    means = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "D"]
    assert np.allclose(means, [values["random"].mean(), values["ease"].mean()])


def test_cliques_on_demsars_worked_example():
    # Demšar (2006), section 3.2.2: four variants of C4.5 on 14 data sets, average ranks 3.143,
    # 2.000, 2.893, 1.964; CD = 2.569 * sqrt(4 * 5 / (6 * 14)) = 1.25 at alpha 0.05: no two differ
    # significantly by Nemenyi, so all four form one group.
    ranks = [3.143, 2.000, 2.893, 1.964]
    cd = 2.569 * np.sqrt(4 * 5 / (6 * 14))
    assert cd == pytest.approx(1.254, abs=1e-3)
    assert plots.cliques(ranks, cd) == [(0, 3)]
    # At alpha 0.10 (CD 1.12) the best (1.964) and the worst (3.143) differ: two groups.
    assert plots.cliques(ranks, 2.291 * np.sqrt(20 / 84)) == [(0, 2), (2, 3)]
    assert plots.cliques([1.0, 2.0, 3.0], 0.5) == []  # every pair differs


def test_critical_difference_diagram_draws_cd_bar_and_groups():
    ranks = {"a": 1.2, "b": 1.9, "c": 2.6, "d": 3.9, "e": 4.4}
    ax = plots.critical_difference(ranks, 1.5, alpha=0.05).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "CD = 1.50 (α = 0.05)" in texts
    assert {f"{n} ({r:.2f})" for n, r in ranks.items()} <= set(texts)
    thick = [c for c in ax.collections if max(c.get_linewidths()) == 3]
    assert len(thick) == 3  # a-c, c-d, d-e


def test_png_is_deterministic_and_has_no_metadata():
    first = plots.png(plots.accuracy_vs_cost(BOARD, "ndcg@10"))
    again = plots.png(plots.accuracy_vs_cost(BOARD, "ndcg@10"))
    assert first.startswith(b"\x89PNG\r\n\x1a\n") and first == again
    assert b"Software" not in first and b"matplotlib" not in first
    assert plots.data_uri(first).startswith("data:image/png;base64,iVBOR")
