"""`recbench models [NAME]`: what each model (or dataset, metric, splitter) is and how to configure it.

Hyperparameters come from the component's config dataclass: name, type, default, valid range and
help. A plugin declares range and help in the field's metadata::

    factors: int = field(default=64, metadata={"range": (1, None), "help": "embedding size"})

``range`` is ``(low, high)``, both inclusive, ``None`` for no bound. Without metadata, the help is
the comment on the field's line in the source and the range is read from the config's own
validation: each numeric field is set to extreme values and the error message it raises is shown
(``valid range: ...`` when the message says so, else its ``must be ...`` clause).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import re
import tokenize
import typing
from typing import Any

import click

from ..config import to_dict
from ..registry import Entry, Registry
from .common import registry

KINDS = ("model", "dataset", "metric", "splitter")
_PROBES: dict[type, tuple[Any, ...]] = {int: (-(2**31), 0, 2**31), float: (-1e30, 0.0, 1e30, math.nan)}


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not typing.get_args(tp) else None
    return text or str(tp).replace("typing.", "")


def _field_comments(cls: type) -> dict[str, str]:
    """``name: type = default  # comment`` -> {name: comment}, from the class's source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    line_name: dict[int, str] = {}
    for number, line in enumerate(source.splitlines(), 1):
        m = re.match(r"\s+(\w+)\s*:", line)
        if m and m.group(1) in names:
            line_name[number] = m.group(1)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and tok.start[0] in line_name:
                out.setdefault(line_name[tok.start[0]], tok.string.lstrip("# ").strip())
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _declared_range(value: Any) -> str:
    low, high = value
    if low is not None and high is not None:
        return f"[{low}, {high}]"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else "any"


def _probed_range(cls: type, name: str, tp: Any) -> str:
    """What the config's validation says about ``name`` when it is set to extreme values."""
    said: list[str] = []
    for value in _PROBES.get(tp, ()):
        try:
            cls(**{name: value})
        except Exception as e:  # noqa: BLE001 - any rejection message is what we want to show
            text = str(e)
            m = re.search(r"valid range:?\s*([\[(][^\])]*[\])])", text)  # an interval
            # "<name> must lie in [0, 5], got -1e+30" -> "must lie in [0, 5]"
            m2 = re.search(rf"\b{name}\b\s+(.*?)(?:,?\s*got\b.*)?$", text)
            part = m.group(1).strip() if m else (m2.group(1).strip() if m2 else text.strip())
            if part and part not in said:
                said.append(part)
    return "; ".join(said)


def hyperparameters(cls: type) -> list[dict[str, Any]]:
    """One dict per init field of the config dataclass: name, type, default, range, help."""
    if not dataclasses.is_dataclass(cls):
        return []
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    defaults = to_dict(cls()) if _constructible(cls) else {}
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints.get(f.name, f.type)
        if "range" in f.metadata:
            valid = _declared_range(f.metadata["range"])
        elif typing.get_origin(tp) is typing.Literal:
            valid = "one of " + ", ".join(map(repr, typing.get_args(tp)))
        else:
            valid = _probed_range(cls, f.name, tp)
        rows.append({"name": f.name, "type": _type_name(tp),
                     "default": defaults.get(f.name, None),
                     "range": valid, "help": str(f.metadata.get("help", comments.get(f.name, "")))})
    return rows


def _constructible(cls: type) -> bool:
    try:
        cls()
    except Exception:  # noqa: BLE001 - a config without defaults for every field
        return False
    return True


def describe(kind: str, entry: Entry) -> dict[str, Any]:
    """Everything `recbench models` shows about one registered component."""
    spec = entry.spec
    out: dict[str, Any] = {"kind": kind, "name": spec.name,
                           "plugin": entry.plugin, "distribution": entry.distribution,
                           "version": entry.version}
    if kind == "model":
        out.update(families=list(spec.all_families), tasks=sorted(spec.tasks),
                   requires=sorted(spec.requires), description=spec.description)
    elif kind == "dataset":
        out.update(description=spec.card.description, source=spec.card.source,
                   license=spec.card.license, citation=spec.card.citation)
    elif kind == "metric":
        out.update(task=spec.task, higher_is_better=spec.higher_is_better, uses_k=spec.uses_k,
                   per_user=spec.per_user, description=spec.description)
    else:
        out.update(description=spec.description, takes_dataset=spec.takes_dataset)
    config = getattr(spec, "config", None)
    out["config"] = getattr(config, "__name__", None)
    doc = inspect.getdoc(config) if config is not None else None
    # dataclasses invent "Name(field: type = ...)" when the class has no docstring: not help.
    out["config_doc"] = "" if not doc or doc.startswith(f"{config.__name__}(") else doc
    out["hyperparameters"] = hyperparameters(config) if config is not None else []
    return out


def _summary(info: dict[str, Any]) -> str:
    if info["kind"] == "model":
        extra = f"{'/'.join(info['families'])}; {', '.join(info['tasks'])}"
        if info["requires"]:
            extra += f"; needs {', '.join(info['requires'])}"
    elif info["kind"] == "metric":
        extra = f"{info['task']}; {'higher' if info['higher_is_better'] else 'lower'} is better"
    else:
        extra = info.get("license", "") or ""
    return f"{info['name']:<24} {extra:<40} {info['description']}".rstrip()


def _detail(info: dict[str, Any]) -> str:
    lines = [f"{info['kind']} {info['name']}  (plugin {info['plugin']}, "
             f"{info['distribution']} {info['version']})"]
    skip = {"kind", "name", "plugin", "distribution", "version", "config", "config_doc",
            "hyperparameters"}
    for key, value in info.items():
        if key not in skip and value not in ("", None, []):
            shown = ", ".join(value) if isinstance(value, list) else value
            lines.append(f"  {key}: {shown}")
    params = info["hyperparameters"]
    if info["config_doc"]:
        doc = info["config_doc"].replace("\n", "\n    ")
        lines.append(f"  config {info['config']}: {doc}")
    if not params:
        lines.append("  hyperparameters: none")
        return "\n".join(lines)
    lines.append("  hyperparameters:")
    for p in params:
        lines.append(f"    {p['name']}: {p['type']} = {json.dumps(p['default'])}")
        if p["range"]:
            lines.append(f"      valid: {p['range']}")
        if p["help"]:
            lines.append(f"      {p['help']}")
    return "\n".join(lines)


def _entries(reg: Registry, kind: str, name: str | None) -> list[Entry]:
    """The named entry, or every entry whose spec builds (`recbench plugins` shows the errors)."""
    return [reg.get(kind, name)] if name else [reg.get(kind, n) for n in reg.usable(kind)]


@click.command("models")
@click.argument("name", required=False)
@click.option("--kind", type=click.Choice(KINDS), default="model", show_default=True,
              help="What to list: models, datasets, metrics or splitters.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def models_command(ctx: click.Context, name: str | None, kind: str, fmt: str) -> None:
    """List models (or --kind dataset|metric|splitter); with NAME, its hyperparameters too."""
    infos = [describe(kind, e) for e in _entries(registry(ctx), kind, name)]
    if fmt == "json":
        click.echo(json.dumps(infos if name is None else infos[0], indent=2, default=str))
    elif name is None:
        for info in infos:
            click.echo(_summary(info))
        click.echo(f"\n`recbench models NAME{'' if kind == 'model' else f' --kind {kind}'}` "
                   "shows one with its hyperparameters.")
    else:
        click.echo(_detail(infos[0]))
