"""docs/hooks.md stays in step with recbench/hookspecs.py, its examples work, every hook is tested.

- every hookspec has exactly one ``### <name>`` section, and every such section is a hookspec;
- the section's first ``python`` block is the exact signature (names, annotations, return type);
- each section has an example; the examples of all sections, executed together as one plugin
  module, load without error, contribute to every registry kind and run a small experiment whose
  lifecycle hooks fire without error;
- every hook name appears in some test file other than this one.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import sys
import types
from pathlib import Path

import pytest

from recbench import hookspecs
from recbench.config import Component, Experiment, Protocol
from recbench.plugins import load_plugins
from recbench.registry import KINDS, Registry
from recbench.runner import RunOptions, Runner

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "hooks.md"
TESTS = ROOT / "tests"
THIS = Path(__file__).resolve()


def hook_specs() -> dict[str, object]:
    return {name: f for name, f in vars(hookspecs).items()
            if inspect.isfunction(f) and hasattr(f, f"{hookspecs.PROJECT}_spec")}


HOOKS = sorted(hook_specs())


def sections() -> dict[str, list[str]]:
    """``### name`` heading -> the python code blocks of its section (up to the next heading)."""
    out: dict[str, list[str]] = {}
    text = DOC.read_text()
    parts = re.split(r"^(#{1,3} .*)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        if heading.startswith("### "):
            name = heading[4:].strip()
            assert name not in out, f"docs/hooks.md has two sections '### {name}'"
            out[name] = re.findall(r"^```python\n(.*?)^```", body, flags=re.M | re.S)
    return out


def _norm(annotation: str) -> str:
    return ast.unparse(ast.parse(annotation, mode="eval"))


def test_there_are_hooks():
    assert {"register_models", "run_finished"} <= set(HOOKS)


def test_every_hook_has_a_section_and_every_section_is_a_hook():
    documented = set(sections())
    missing = sorted(set(HOOKS) - documented)
    assert not missing, f"docs/hooks.md lacks a '### <name>' section for: {missing}"
    stale = sorted(documented - set(HOOKS))
    assert not stale, f"docs/hooks.md documents hooks that recbench.hookspecs lacks: {stale}"


@pytest.mark.parametrize("name", HOOKS)
def test_documented_signature_is_exact(name):
    blocks = sections().get(name)
    assert blocks, f"docs/hooks.md: section '### {name}' has no python code block"
    written = blocks[0].strip()
    assert "\n" not in written, f"### {name}: the first python block must be the one-line signature"
    tree = ast.parse(written.rstrip(":") + ": ...")
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef) and func.name == name, written

    sig = inspect.signature(hook_specs()[name])
    actual = [(p.name, _norm(p.annotation)) for p in sig.parameters.values()]
    args = func.args
    assert not (args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg), written
    documented = [(a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in args.args]
    assert documented == actual, f"### {name}: documented {written!r}, hookspecs has {sig}"
    assert func.returns is not None, f"### {name}: the signature must state its return type"
    assert ast.unparse(func.returns) == _norm(sig.return_annotation), \
        f"### {name}: documented {written!r}, hookspecs has {sig}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_section_has_an_example(name):
    blocks = sections()[name]
    assert len(blocks) >= 2, f"### {name}: add an example implementation after the signature"
    for block in blocks[1:]:
        tree = ast.parse(block)
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"### {name}: the example does not implement {name}"
    # Wording is free, but the section must say when the hook is called and how errors behave.
    section = DOC.read_text().split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
    assert re.search(r"\bWhen\b", section) and re.search(r"\bErrors?\b", section), \
        f"### {name}: say when the hook is called and what happens when it raises"


def test_intro_covers_loading_and_isolation():
    text = DOC.read_text()
    for needed in ("recbench.hookimpl", "[project.entry-points.recbench]", "RECBENCH_LOAD_PLUGINS",
                   "--plugin", "Did you mean", "distribution"):
        assert needed in text, f"docs/hooks.md: mention {needed}"


@pytest.fixture
def examples_plugin(monkeypatch) -> types.ModuleType:
    """Every example of docs/hooks.md, executed in order into one module."""
    mod = types.ModuleType("recbench_hooks_md_examples")
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    for name, blocks in sections().items():
        for i, block in enumerate(blocks[1:]):
            exec(compile(block, f"docs/hooks.md:### {name} example {i}", "exec"), mod.__dict__)
    return mod


def test_examples_load_as_one_plugin_and_run(examples_plugin, tmp_path, caplog, capsys):
    host = load_plugins(allow=set(), objects=(examples_plugin,))
    registry = Registry.build(host)
    info = host.info(examples_plugin.__name__)
    assert info.error is None
    assert info.hooks == HOOKS
    contributed = {kind: info.contributes.get(kind + "s", []) for kind in KINDS}
    assert all(contributed.values()), f"an example registration hook contributed nothing: {info}"
    assert not registry.clashes

    experiment = Experiment(
        name="hooks-md",
        datasets=tuple(Component(n) for n in contributed["dataset"]),
        models=tuple(Component(n) for n in contributed["model"]) + (Component("random"),),
        seeds=(0,),
        protocol=Protocol(split=Component(contributed["splitter"][0]),
                          metrics=tuple(contributed["metric"]) + ("ndcg",), ks=(5,)))
    runner = Runner(experiment, registry, RunOptions(results_dir=tmp_path / "results"))
    with caplog.at_level(logging.INFO, logger="my_tracker"):
        records = runner.run()
    assert runner.hook_errors == []
    assert [r["status"] for r in records] == ["ok"] * len(records), records
    for metric in contributed["metric"]:
        assert all(f"{metric}@5" in r["metrics"] for r in records)
    assert "trials to run" in capsys.readouterr().err  # run_started example
    logged = [r.getMessage() for r in caplog.records if r.name == "my_tracker"]
    assert len(logged) == len(records) + len(experiment.datasets)  # trial_finished + run_finished


def test_every_hook_is_exercised_by_a_test():
    texts = {p: p.read_text() for p in TESTS.rglob("*.py") if p.resolve() != THIS}
    untested = [name for name in HOOKS
                if not any(re.search(rf"\b{name}\b", t) for t in texts.values())]
    assert not untested, f"no test (other than {THIS.name}) mentions the hooks {untested}"
