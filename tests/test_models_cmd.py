"""`recbench models`: families, tasks and every hyperparameter with type, default and range."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field

import click
import pytest
from click.testing import CliRunner

from recbench.api import ModelSpec, check, hookimpl
from recbench.cli.models_cmd import hyperparameters, models_command
from recbench.errors import UnknownNameError


@click.group()
@click.pass_context
def _cli(ctx: click.Context) -> None:
    ctx.obj = {"plugin_paths": ()}


_cli.add_command(models_command)


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(_cli, ["models", *args], catch_exceptions=False)


def test_ease_shows_its_hyperparameters():
    out = run("ease").output
    assert "families: cf-item" in out and "tasks: ranking" in out
    assert "l2: float = 500.0" in out and "valid: (0, inf)" in out  # from EASEConfig's check


def test_json_lists_every_field_of_the_config():
    info = json.loads(run("ials", "--format", "json").output)
    names = [p["name"] for p in info["hyperparameters"]]
    assert names[:3] == ["factors", "reg", "alpha"]
    factors = info["hyperparameters"][0]
    assert factors == {"name": "factors", "type": "int", "default": 64, "range": "[1, inf)",
                       "help": ""}


def test_listing_covers_every_kind():
    out = run().output
    assert "ease" in out and "cf-item; ranking" in out and "bpr" in out
    metrics = run("--kind", "metric").output
    assert "ndcg" in metrics and "higher is better" in metrics and "lower is better" in metrics
    assert "synthetic" in run("--kind", "dataset").output
    assert "Literal" not in run("ratio", "--kind", "splitter").output


def test_unknown_name_suggests_the_known_ones():
    with pytest.raises(UnknownNameError, match="eas"):
        run("eas")


@dataclass(frozen=True)
class _Declared:
    factors: int = field(default=8, metadata={"range": (1, None), "help": "embedding size"})
    dropout: float = field(default=0.1, metadata={"range": (0.0, 0.9)})
    depth: int = 2  # layers of the tower
    rate: float = 0.5

    def __post_init__(self) -> None:
        check(0 < self.rate <= 1, f"rate must be in (0, 1], got {self.rate}")


def test_declared_metadata_comments_and_validation():
    rows = {r["name"]: r for r in hyperparameters(_Declared)}
    assert rows["factors"]["range"] == ">= 1" and rows["factors"]["help"] == "embedding size"
    assert rows["dropout"]["range"] == "[0.0, 0.9]"
    assert rows["depth"]["help"] == "layers of the tower" and rows["depth"]["range"] == ""
    assert rows["rate"]["range"] == "must be in (0, 1]"


def test_a_plugin_model_is_described(monkeypatch):
    plugin = types.ModuleType("declared_plugin")
    plugin.register_models = hookimpl(lambda: [ModelSpec(
        "text-tower", "hybrid", frozenset({"ranking"}), lambda c, x: None, _Declared,
        "a text-tower model", families=("cnn",))])
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    from recbench.plugins import load_plugins
    from recbench.registry import Registry

    reg = Registry.build(load_plugins(allow=set(), objects=(plugin,)))
    # The CLI builds the registry once per invocation and keeps it in the root context's obj.
    result = CliRunner().invoke(models_command, ["text-tower"],
                                obj={"registry": reg, "plugin_paths": ()}, catch_exceptions=False)
    assert "families: hybrid, cnn" in result.output
    assert "factors: int = 8" in result.output and "embedding size" in result.output
