"""Report tables: one per protocol (dataset, protocol, recbench version), never mixing them.

Each :class:`ReportTable` holds its protocol card, a board (one row per model setup: mean and std
over seeds and folds, a 95% confidence interval for every metric (by default a bootstrap over
users, for the metrics with per-user values; or a t interval over the runs), the costs, the
family)
and the paired per-user tests between every pair of its models on the same splits, corrected for
multiple comparisons; ``board["<metric>_sig"]`` marks the rows whose difference to the best row is
significant. :func:`build_report` also says what it skipped and why (``Report.notes``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..store import ResultStore, StoreError
from .card import CONFIDENCE, protocol_card
from .leaderboard import (COST_COLUMNS, COUNT_COLUMNS, directions, protocol_of, trial_frame,
                          value_columns)
from .stats import (INTERVALS, TESTS, Unpairable, correct, pair_by_user, paired_test,
                    per_user_means, runs_t_interval, user_bootstrap_ci)



@dataclass
class ReportTable:
    protocol: str  # protocol_of: the table's id
    card: dict[str, Any]
    board: pd.DataFrame
    metrics: list[str]  # metric labels, in the records' order
    directions: dict[str, bool]
    primary: str | None  # the metric rows are sorted by
    tests: pd.DataFrame  # one row per (metric, pair of rows) tested
    test: str = "ttest"
    correction: str = "holm"
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)  # what was not tested, and why


@dataclass
class Report:
    tables: list[ReportTable]
    notes: list[str]  # what was skipped across the whole results directory, and why


UserValues = Callable[[list[str], list[str]], list[tuple[np.ndarray, dict[str, np.ndarray]]]]


def _user_values(store: ResultStore) -> UserValues:
    """(trial keys, metrics) -> (user ids, metric -> per-user values) of each trial that stored
    them with ids (records from before ids were stored have none: no interval for them)."""
    def values(keys: list[str], metrics: list[str]) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        out = []
        for key in keys:
            try:
                per_user, ids = store.per_user(key), store.user_ids(key)
            except StoreError:
                continue  # the report notes unreadable files where the tests read them
            if ids is not None:
                out.append((ids, {m: per_user[m] for m in metrics
                                  if m in per_user and len(per_user[m]) == len(ids)}))
        return out
    return values


def aggregate(frame: pd.DataFrame, metrics: list[str], user_values: UserValues | None = None,
              interval: str = "users") -> pd.DataFrame:
    """One row per ``label`` of a one-protocol trial frame: replicates, mean, std, CI, costs.
    The CI (``<metric>_ci_low`` / ``_ci_high``) is :func:`~.stats.user_bootstrap_ci` over the
    per-user values ``user_values`` gives (NaN for metrics without them), or with ``interval =
    "runs"`` :func:`~.stats.runs_t_interval` over the row's runs (NaN with one run)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    values = value_columns(frame)
    rows = []
    for label, g in frame.groupby("label", sort=False):
        row: dict[str, Any] = {"label": label, "model": g["name"].iloc[0],
                               "family": g["family"].iloc[0], "setup": g["setup"].iloc[0],
                               "seeds": g["seed"].nunique(), "runs": len(g)}
        if "fold" in g:
            row["folds"] = g["fold"].nunique()
        # Means first, then spreads, then intervals: a CSV reads like the table.
        cols = {c: g[c].astype(np.float64) for c in values}
        row.update({c: v.mean() for c, v in cols.items()})
        row.update({f"{c}_std": v.std(ddof=1) if v.count() > 1 else 0.0 for c, v in cols.items()})
        if interval == "runs":
            cis = {c: runs_t_interval(cols[c].to_numpy(), CONFIDENCE) for c in metrics}
        else:
            per_user = user_values(list(g["key"]), metrics) if user_values else []
            cis = user_bootstrap_ci(per_user, (str(g["protocol"].iloc[0]), str(label)),
                                    CONFIDENCE)
        for c in metrics:
            row[f"{c}_ci_low"], row[f"{c}_ci_high"] = cis.get(c, (np.nan, np.nan))
        if "device" in g:
            row["device"] = ", ".join(sorted(set(g["device"].dropna())))
        row["keys"] = list(g["key"])
        rows.append(row)
    return pd.DataFrame(rows)


def best_index(board: pd.DataFrame, metric: str, higher: bool | None) -> int | None:
    column = board[metric]
    if higher is None or column.isna().all() or column.max() == column.min():
        return None  # no direction, no value, or all equal: no best
    return int(column.idxmax() if higher else column.idxmin())


def _samples(store: ResultStore, records: list[dict[str, Any]], metric: str
             ) -> dict[tuple, tuple[str, np.ndarray | None, np.ndarray]]:
    """(seed, fold) -> (split fingerprint, user ids, per-user values) of one row's trials."""
    out = {}
    for r in records:
        values = store.per_user(r["key"]).get(metric)
        if values is None:
            continue
        out[(r["seed"], r.get("fold"))] = (r.get("provenance", {}).get("split_fingerprint", ""),
                                           store.user_ids(r["key"]), values)
    return out


def pairwise_tests(rows: dict[str, list[dict[str, Any]]], store: ResultStore, metrics: list[str],
                   test: str = "ttest", correction: str = "holm", alpha: float = 0.05
                   ) -> tuple[pd.DataFrame, list[str]]:
    """Paired tests between every pair of rows (label -> its records) per metric with per-user
    values, on the (seed, fold) replicates both have on the same split, users paired by id; each
    user counts once, with their mean over those replicates (``stats.per_user_means``). The correction runs over all pairs of one metric."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    results, notes = [], []
    for metric in metrics:
        try:
            samples = {label: _samples(store, recs, metric) for label, recs in rows.items()}
        except StoreError as e:
            notes.append(f"{metric}: per-user values unreadable, not tested: {e}")
            continue
        if not any(samples.values()):
            continue  # a metric without per-user values (e.g. a global RMSE)
        metric_rows = []
        for a, b in itertools.combinations(rows, 2):
            pairs, why = [], set()
            for rep in sorted(set(samples[a]) & set(samples[b]), key=str):
                (fa, ia, va), (fb, ib, vb) = samples[a][rep], samples[b][rep]
                if fa != fb:
                    why.add("their splits differ (split fingerprints)")
                    continue
                try:
                    pairs.append(pair_by_user(ia, va, ib, vb))
                except Unpairable as e:
                    why.add(str(e))
            if not pairs:
                reason = "; ".join(sorted(why)) or "no replicate (seed, fold) in common"
                notes.append(f"{metric}: {a} vs {b} not tested: {reason}")
                continue
            if why:
                notes.append(f"{metric}: {a} vs {b}: some replicates left out: "
                             f"{'; '.join(sorted(why))}")
            res = paired_test(*per_user_means(pairs))
            metric_rows.append({"metric": metric, "a": a, "b": b, "n": res.n,
                                "replicates": len(pairs), "mean_diff": res.mean_diff,
                                "t": res.t, "p_ttest": res.p_ttest, "w": res.w,
                                "p_wilcoxon": res.p_wilcoxon, "d_z": res.d_z})
        if metric_rows:
            p = [r["p_ttest" if test == "ttest" else "p_wilcoxon"] for r in metric_rows]
            reject, adjusted = correct(p, correction, alpha)
            for r, rej, adj in zip(metric_rows, reject, adjusted):
                r.update(p_adjusted=float(adj), significant=bool(rej))
            results += metric_rows
    return pd.DataFrame(results), notes


def _mark_significance(board: pd.DataFrame, tests: pd.DataFrame, metrics: list[str],
                       dirs: dict[str, bool]) -> None:
    """``<metric>_sig``: True where the row differs significantly from the metric's best row,
    False where it does not, None where the pair was not tested (and for the best row)."""
    for metric in metrics:
        best = best_index(board, metric, dirs.get(metric))
        marks: list[bool | None] = [None] * len(board)
        if best is not None and not tests.empty:
            top = board.at[best, "label"]
            sub = tests[tests["metric"] == metric]
            for i, label in enumerate(board["label"]):
                hit = sub[((sub["a"] == top) & (sub["b"] == label))
                          | ((sub["a"] == label) & (sub["b"] == top))]
                if i != best and len(hit):
                    marks[i] = bool(hit["significant"].iloc[0])
        board[f"{metric}_sig"] = marks


def current_failures(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed trials not superseded by a later success of the same dataset, model, seed and
    fold (e.g. a failure fixed by a code change, which gives the trial a new key)."""
    def where(r: dict[str, Any]) -> tuple:
        # The protocol and the model's config too: a success under another protocol or config
        # (same labels) does not supersede this failure.
        model = (r.get("identity") or {}).get("model")
        return (protocol_of(r), r.get("dataset"), r.get("model"), json.dumps(model, sort_keys=True),
                r.get("seed"), r.get("fold"))

    latest_ok: dict[tuple, str] = {}
    for r in records:
        if r.get("status") == "ok":
            latest_ok[where(r)] = max(latest_ok.get(where(r), ""), r.get("started", ""))
    return [r for r in records if r.get("status") not in ("ok", "unsupported")
            and not latest_ok.get(where(r), "") > r.get("started", "")]


def unsupported(records: list[dict[str, Any]]) -> list[str]:
    """One line per (dataset, model) whose trials the model cannot serve, with the reason (e.g.
    a CF model on a cold-item split: "cannot serve cold items"); never averaged, never failed."""
    seen: dict[tuple[str, str, str], int] = {}
    for r in records:
        if r.get("status") == "unsupported":
            where = (r["dataset"], r["model"], r.get("reason", "unsupported"))
            seen[where] = seen.get(where, 0) + 1
    return [f"{d} / {m}: {why} ({n} trial{'s' * (n > 1)})" for (d, m, why), n in seen.items()]


def _failure_notes(records: list[dict[str, Any]]) -> list[str]:
    notes = []
    for r in current_failures(records):
        replicate = f"seed {r.get('seed')}" + (f" fold {r['fold']}" if "fold" in r else "")
        error = str(r.get("error") or r.get("status")).splitlines()[0]
        notes.append(f"failed trial left out: {r.get('dataset')} / {r.get('model')} / "
                     f"{replicate}: {error}")
    return notes


def build_report(records: Iterable[dict[str, Any]], store: ResultStore | None = None,
                 families: dict[str, str] | None = None,
                 metric_descriptions: dict[str, str] | None = None, test: str = "ttest",
                 correction: str = "holm", alpha: float = 0.05,
                 sort_by: str | None = None, interval: str = "users") -> Report:
    """Every table of a results directory's records (``store`` reads the per-user values for the
    paired tests; without it no test runs); ``interval``: the CI columns' interval
    (:func:`aggregate`)."""
    records = list(records)
    ok = [r for r in records if r.get("status") == "ok"]
    notes = [*unsupported(records), *_failure_notes(records)]
    unchecked = [r for r in ok if not isinstance(r.get("metrics"), dict)]
    if unchecked:
        notes += [f"record {r.get('key')} has no metrics: left out" for r in unchecked]
        ok = [r for r in ok if r not in unchecked]
    frame = trial_frame(ok, families)
    if frame.empty:
        return Report([], notes)
    versions = {r.get("identity", {}).get("recbench") for r in ok} - {None}
    if len(versions) > 1:
        notes.append(f"records of recbench versions {', '.join(sorted(versions))}: each version "
                     f"gets its own tables, never averaged together")
    by_protocol: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        by_protocol.setdefault(protocol_of(r), []).append(r)
    tables = []
    for protocol, recs in by_protocol.items():
        sub = frame[frame["protocol"] == protocol].dropna(axis=1, how="all")
        dirs = directions(recs)
        metrics = [c for c in value_columns(sub) if c not in COST_COLUMNS
                   and c not in COUNT_COLUMNS]
        board = aggregate(sub, metrics, _user_values(store) if store is not None else None,
                          interval)
        primary = sort_by if sort_by in metrics else (metrics[0] if metrics else None)
        if primary is not None and dirs.get(primary) is not None:
            board = board.sort_values(primary, ascending=not dirs[primary], kind="stable",
                                      ignore_index=True)
        by_label = {label: [r for r in recs if r.get("key") in set(keys)]
                    for label, keys in zip(board["label"], board["keys"])}
        tests, table_notes = (pairwise_tests(by_label, store, metrics, test, correction, alpha)
                              if store is not None else (pd.DataFrame(), []))
        most = board["runs"].max()
        table_notes += [f"{label}: {runs} of {most} runs (the others failed or are missing): its "
                        f"mean is over fewer seeds than the other rows'"
                        for label, runs in zip(board["label"], board["runs"]) if runs < most]
        _mark_significance(board, tests, metrics, dirs)
        tables.append(ReportTable(protocol, protocol_card(recs, metric_descriptions, interval),
                                  board,
                                  metrics, dirs, primary, tests, test, correction, alpha,
                                  table_notes))
    tables.sort(key=lambda t: (t.card["dataset"], t.card["task"], t.protocol))
    return Report(tables, notes)
