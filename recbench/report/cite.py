"""`recbench cite`: BibTeX for recbench (from ``CITATION.cff``'s fields) and for every dataset a
results directory used (from the dataset cards), then a provenance block as BibTeX comments
(``%`` lines), so the whole output can be pasted into a ``.bib`` file."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .. import __version__
from ..config import canonical_json
from ..specs import DatasetCard

# Kept in step with CITATION.cff at the repository root (a test compares them).
TITLE = "recbench: comparative, reproducible benchmarking of recommender systems"
AUTHOR = "{The recbench developers}"


def recbench_bibtex(version: str = __version__) -> str:
    return (f"@software{{recbench,\n  author  = {{{AUTHOR}}},\n  title   = {{{{{TITLE}}}}},\n"
            f"  version = {{{version}}},\n  license = {{Apache-2.0}},\n"
            f"  note    = {{Software; cite the datasets used too}}\n}}")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower()) or "dataset"


def dataset_bibtex(name: str, card: DatasetCard | None) -> str:
    """The card's BibTeX; a card with only a text citation becomes a @misc with it as a note."""
    if card is not None and card.bibtex:
        return card.bibtex.strip()
    if card is not None and card.citation:
        note = card.citation.replace("{", "(").replace("}", ")")
        return (f"@misc{{{_key(name)},\n  title = {{Dataset {name}}},\n  note  = {{{note}}}"
                + (f",\n  url   = {{{card.source}}}" if card.source.startswith("http") else "")
                + "\n}")
    return f"% dataset {name}: its card names no citation (generated or your own data)"


def _distinct(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def provenance_lines(records: list[dict[str, Any]]) -> list[str]:
    """Versions, configs, hardware and the trial keys of the successful records."""
    ok = [r for r in records if r.get("status") == "ok"]
    lines = [f"trials: {len(ok)} successful"]
    for versions in _distinct(r.get("provenance", {}).get("versions") for r in ok):
        if versions:
            lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for commit in _distinct(r.get("provenance", {}).get("git_commit") for r in ok):
        if commit:
            lines.append(f"git commit: {commit}")
    for hw in _distinct({k: v for k, v in r.get("provenance", {}).get("hardware", {}).items()
                         if k != "load_average_1_5_15m"} for r in ok):
        if hw:
            lines.append("hardware: " + ", ".join(f"{k} {v}" for k, v in hw.items()))
    for ds in _distinct(r.get("identity", {}).get("dataset") for r in ok):
        if ds:
            lines.append(f"dataset: {ds['name']} {canonical_json(ds.get('config', {}))} "
                         f"checksum {ds.get('checksum')}")
    for protocol in _distinct(r.get("identity", {}).get("protocol") for r in ok):
        if protocol:
            lines.append(f"protocol: {canonical_json(protocol)}")
    for label, model in _distinct((r["model"], r.get("identity", {}).get("model")) for r in ok):
        if model:
            lines.append(f"model {label}: {model['name']} {canonical_json(model.get('config'))}")
    for r in sorted(ok, key=lambda r: (r["dataset"], r["model"], r["seed"], r.get("fold", -1))):
        fold = f" fold {r['fold']}" if "fold" in r else ""
        lines.append(f"trial {r['key']}: {r['dataset']} / {r['model']} / seed {r['seed']}{fold}")
    return lines


def cite(records: list[dict[str, Any]], card_of: Callable[[str], DatasetCard | None]) -> str:
    """The whole citation text: recbench, each dataset used, the provenance block."""
    names = _distinct(r.get("identity", {}).get("dataset", {}).get("name", r.get("dataset"))
                      for r in records if r.get("status") == "ok")
    parts = [recbench_bibtex(), *(dataset_bibtex(n, card_of(n)) for n in names)]
    if records:
        parts.append("\n".join(f"% {line}" for line in ["provenance (recbench cite)",
                                                         *provenance_lines(records)]))
    return "\n\n".join(parts) + "\n"
