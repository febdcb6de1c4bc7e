"""The protocol card of a report table: what every number in it was measured under.

Built from the trial records alone (dataset name, config and checksum; preprocessing; split and the
fingerprint of each split; the candidate set; metric definitions; seeds; the history rule; the
recbench version; which interval the CI columns are), so a table read back from a results directory carries its own card.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import canonical_json
from .stats import BOOTSTRAP_RESAMPLES, RUNS_T, USER_BOOTSTRAP

CONFIDENCE = 0.95  # of every interval a report shows

TIE_RULE = "ties in scores are broken by item index (lower first)"


def candidate_set(protocol: dict[str, Any], n_items: int | None) -> str:
    task = protocol.get("task", "ranking")
    if task == "ranking":
        masked = "training + validation" if protocol.get("mask_valid_in_test", True) else "training"
        if protocol.get("candidates", "all") == "cold":
            return (f"only the cold items (held out of training with all their interactions, the "
                    f"test part's items); each user's {masked} items masked; {TIE_RULE}")
        items = f"all {n_items} items" if n_items else "all items"
        return f"full ranking over {items}; each user's {masked} items masked; {TIE_RULE}"
    if task == "rating":
        return "the test (user, item, rating) pairs"
    threshold = protocol.get("binary_threshold")
    return (f"the test pairs, positive when rating >= {threshold}; without ratings, each test pair "
            f"is a positive with one sampled unseen negative")


def _describe(component: Any) -> str:
    if not isinstance(component, dict):
        return str(component)
    config = component.get("config") or {}
    return component.get("name", "?") + (f" {canonical_json(config)}" if config else "")


def protocol_card(records: Sequence[dict[str, Any]],
                  metric_descriptions: dict[str, str] | None = None,
                  interval: str = "users") -> dict[str, Any]:
    """The card of records that share one protocol (:func:`~.leaderboard.protocol_of`);
    ``interval``: which interval the CI columns are (``stats.INTERVALS``)."""
    first = records[0]
    identity = first.get("identity", {})
    protocol = identity.get("protocol", {})
    dataset = identity.get("dataset", {})
    shape = first.get("provenance", {}).get("data_shape", {})
    splits = {}
    for r in sorted(records, key=lambda r: (r["seed"], r.get("fold", -1))):
        where = f"seed {r['seed']}" + (f" fold {r['fold']}" if "fold" in r else "")
        fingerprint = r.get("provenance", {}).get("split_fingerprint")
        if fingerprint:
            splits[where] = fingerprint[:12]
    directions = {}
    for r in records:
        directions.update(r.get("higher_is_better", {}))
    descriptions = metric_descriptions or {}
    metrics = {label: ("higher is better" if up else "lower is better")
               + (f"; {descriptions[label.split('@')[0]]}" if label.split("@")[0] in descriptions
                  else "")
               for label, up in directions.items()}
    seeds = sorted({r["seed"] for r in records})
    folds = sorted({r["fold"] for r in records if "fold" in r})
    return {
        "dataset": first["dataset"],
        "dataset_name": dataset.get("name", first["dataset"]),
        "dataset_config": dataset.get("config", {}),
        "dataset_checksum": dataset.get("checksum", "unknown"),
        "data_shape": shape,
        "task": protocol.get("task", "unknown"),
        "preprocessing": protocol.get("preprocess", "unknown"),
        "split": _describe(protocol.get("split", "unknown")),
        "split_fingerprints": splits,
        "candidate_set": candidate_set(protocol, shape.get("items")) if protocol else "unknown",
        "metrics": metrics,
        "seeds": seeds,
        **({"folds": folds} if folds else {}),
        "history": protocol.get("history", "unknown"),
        "interval": f"{CONFIDENCE:.0%} " + (RUNS_T if interval == "runs" else
                                            USER_BOOTSTRAP.format(n=BOOTSTRAP_RESAMPLES)),
        "recbench": identity.get("recbench", "unknown"),
    }


def card_lines(card: dict[str, Any], interval: bool = True) -> list[str]:
    """The card as short ``name: value`` lines (Markdown, terminal and captions use them);
    ``interval=False`` leaves out the interval line, for a table without an interval column."""
    shape = card["data_shape"]
    size = (f" ({shape['users']} users, {shape['items']} items; {shape['train']} train / "
            f"{shape['valid']} valid / {shape['test']} test)" if shape else "")
    config = canonical_json(card["dataset_config"]) if card["dataset_config"] else ""
    prep = card["preprocessing"]
    prep = canonical_json(prep) if isinstance(prep, dict) else str(prep)
    splits = ", ".join(f"{k} {v}" for k, v in card["split_fingerprints"].items()) or "unknown"
    replicates = ", ".join(map(str, card["seeds"]))
    if "folds" in card:
        replicates += f" × folds {', '.join(map(str, card['folds']))}"
    return [
        f"dataset: {card['dataset_name']} {config} sha256 {card['dataset_checksum'][:16]}{size}",
        f"task: {card['task']}; recbench {card['recbench']}",
        f"preprocessing: {prep}",
        f"split: {card['split']}; fingerprints: {splits}",
        f"candidates: {card['candidate_set']}",
        "metrics: " + "; ".join(f"{k} ({v})" for k, v in card["metrics"].items()),
        f"seeds: {replicates}",
        f"history: {card['history']} (what a model sees of each user when scoring the test set)",
        *([f"CI: {card['interval']}"] if interval and "interval" in card else []),
    ]
