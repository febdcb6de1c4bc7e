"""docs/hooks.md stays in step with recbench/hookspecs.py, its examples work, every hook is tested.

- every hookspec has exactly one ``### <name>`` section, and every such section is a hookspec;
- the section's first ``python`` block is the exact signature (names, annotations, return type);
- each section has an example; the examples of all sections, executed together as one plugin
  module, load without error, contribute to every registry kind and run a small experiment whose
  lifecycle hooks fire without error;
- every hook has a test: a test function (other than in this file) whose name contains the hook's
  name and whose code uses the hook (implements it, calls it, or names it in a string); a mention
  in a comment, a docstring or a test named for something else does not count.
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


REFERENCED_TYPES = ("ModelSpec", "ModelContext", "DatasetSpec", "DatasetCard", "LoadContext",
                    "MetricSpec", "RankingContext", "PointContext", "SplitterSpec", "Split",
                    "Interactions", "FeatureTable", "Dataset", "UserBatch", "Experiment",
                    "PlannedTrial")


@pytest.mark.parametrize("type_name", REFERENCED_TYPES)
def test_every_field_of_every_type_is_in_the_reference(type_name):
    import dataclasses

    import recbench.api as api

    reference = DOC.read_text().split("## Reference: the types", 1)[1]
    assert f"`{type_name}`" in reference or f"#### {type_name}" in reference
    cls = getattr(api, type_name)
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:  # a class with slots and properties (UserBatch builds its history on demand)
        names = [n for n in (*cls.__slots__, *(k for k, v in vars(cls).items()
                                               if isinstance(v, property)))
                 if not n.startswith("_")]
    missing = [name for name in names if f"`{name}`" not in reference]
    assert not missing, f"docs/hooks.md reference: {type_name} fields not listed: {missing}"


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


def _uses(func: ast.AST, hook: str) -> bool:
    """``func``'s code (its docstring left out) implements, calls or names ``hook``."""
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if ((isinstance(node, ast.Name) and node.id == hook)
                or (isinstance(node, ast.Attribute) and node.attr == hook)
                or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == hook)
                or (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and re.search(rf"\b{hook}\b", node.value))):
            return True
    return False


def hooks_tested(source: str, hooks: list[str]) -> dict[str, list[str]]:
    """hook -> the test functions of ``source`` named for it that use it."""
    found: dict[str, list[str]] = {}
    tree = ast.parse(source)
    funcs = [n for top in tree.body
             for n in ([top] if not isinstance(top, ast.ClassDef) else top.body)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]
    for func in funcs:
        for hook in hooks:
            if hook in func.name and _uses(func, hook):
                found.setdefault(hook, []).append(func.name)
    return found


def test_every_hook_is_exercised_by_a_test_named_for_it():
    tested: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        if path.resolve() != THIS:
            tested |= set(hooks_tested(path.read_text(), HOOKS))
    untested = sorted(set(HOOKS) - tested)
    assert not untested, (f"no test function (outside {THIS.name}) is named for and uses the "
                          f"hooks {untested}; add e.g. test_{untested[0]}_... that exercises it")


def test_only_a_named_test_that_uses_the_hook_counts():
    source = """
# run_started is mentioned in a comment
def test_something_else():
    pm.hook.run_started(experiment=None, trials=[])

def test_run_started_in_name_only():
    \"\"\"run_started, in a docstring only.\"\"\"
    assert True

def helper_run_finished():
    pm.hook.run_finished()

def test_run_finished_calls_it():
    pm.hook.run_finished(experiment=None, records=[])

class TestGroup:
    def test_trial_finished_named_in_a_string(self):
        assert "trial_finished" in calls

    def test_register_models_implemented(self):
        class P:
            def register_models(self):
                return []
"""
    assert hooks_tested(source, HOOKS) == {
        "run_finished": ["test_run_finished_calls_it"],
        "trial_finished": ["test_trial_finished_named_in_a_string"],
        "register_models": ["test_register_models_implemented"]}
