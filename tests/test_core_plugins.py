"""Plugin loading: isolation of broken plugins, misspelled hooks, allow-list, files, name clashes."""

from __future__ import annotations

import pytest

from recbench import DatasetSpec, MetricSpec, ModelSpec, hookimpl
from recbench.errors import PluginError, UnknownNameError
from recbench.plugins import load_plugins
from recbench.registry import Registry

BUILTIN_MODELS = {"random", "most-popular"}


def test_builtins_load_through_entry_points(registry):
    sources = {p.source for p in registry.host.plugins}
    assert sources == {"builtin"}
    assert all(p.distribution == "recbench" and not p.error for p in registry.host.plugins)
    assert BUILTIN_MODELS <= set(registry.names("model"))
    assert "synthetic" in registry.names("dataset")
    assert {"ndcg", "recall", "precision"} <= set(registry.names("metric"))
    assert "ratio" in registry.names("splitter")
    # every built-in registration hook is exercised and attributed to its plugin
    contributed = {name for p in registry.host.plugins for names in p.contributes.values()
                   for name in names}
    assert BUILTIN_MODELS | {"synthetic", "ndcg", "ratio"} <= contributed


class Misspelled:
    @hookimpl
    def register_model(self):  # missing "s": must be rejected loudly
        return []


class Raising:
    @hookimpl
    def register_models(self):
        raise RuntimeError("boom")


class WrongType:
    @hookimpl
    def register_datasets(self):
        return ["not a spec"]


def _model(name):
    return ModelSpec(name, "baseline", frozenset({"ranking"}), lambda c, x: None)


class ClashA:
    @hookimpl
    def register_models(self):
        return [_model("twin")]


class ClashB:
    @hookimpl
    def register_models(self):
        return [_model("twin"), _model("only-b")]


def test_broken_plugins_are_isolated_and_recorded():
    host = load_plugins(allow=set(), objects=(Misspelled(), Raising(), WrongType()))
    reg = Registry.build(host)
    errors = {p.name: p.error for p in host.plugins if p.error}
    assert "register_model" in errors["Misspelled"] and "register_models" in errors["Misspelled"]
    assert "boom" in errors["Raising"]
    assert "expected DatasetSpec" in errors["WrongType"]
    assert BUILTIN_MODELS <= set(reg.names("model"))  # the built-ins still work


def test_name_clash_names_both_and_keeps_the_rest():
    reg = Registry.build(load_plugins(allow=set(), objects=(ClashA(), ClashB())))
    assert "only-b" in reg.names("model")
    with pytest.raises(PluginError, match="ClashA.*ClashB"):
        reg.get("model", "twin")


def test_unknown_name_suggests_close_matches(registry):
    with pytest.raises(UnknownNameError, match="most-popular"):
        registry.get("model", "most-populr")


def test_plugin_from_path(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(
        "from recbench import hookimpl, MetricSpec\n"
        "@hookimpl\n"
        "def register_metrics():\n"
        "    return [MetricSpec('first-hit', 'ranking', True, lambda ctx, k: ctx.hits[:, 0] * 1.0)]\n")
    reg = Registry.build(load_plugins(allow=set(), paths=(path,)))
    assert reg.get("metric", "first-hit").distribution == f"file:{path}"
    bad = tmp_path / "broken.py"
    bad.write_text("raise ImportError('missing dependency')\n")
    host = load_plugins(allow=set(), paths=(bad, tmp_path / "absent.py"))
    assert sum(1 for p in host.plugins if p.error) == 2


def test_allow_list_from_environment(monkeypatch):
    monkeypatch.setenv("RECBENCH_LOAD_PLUGINS", "")
    host = load_plugins()
    assert all(p.source == "builtin" for p in host.plugins)


def test_registry_rejects_invalid_specs():
    class BadTask:
        @hookimpl
        def register_metrics(self):
            return [MetricSpec("m", "regression", True, lambda c, k: 0.0)]

    class BadName:
        @hookimpl
        def register_datasets(self):
            return [DatasetSpec(" spaced ", lambda c, x: None, None)]

    host = load_plugins(allow=set(), objects=(BadTask(), BadName()))
    Registry.build(host)
    assert "task must be one of" in host.info("BadTask").error
    assert "without spaces" in host.info("BadName").error


def test_typed_accessors_return_the_spec_of_their_kind(registry):
    assert isinstance(registry.model("most-popular"), ModelSpec)
    assert isinstance(registry.dataset("synthetic"), DatasetSpec)
    assert isinstance(registry.metric("ndcg"), MetricSpec)
    assert registry.splitter("ratio").name == "ratio"
    assert registry.model("random") is registry.model("random")
    with pytest.raises(UnknownNameError, match="unknown metric 'ndgc'.*'ndcg'"):
        registry.metric("ndgc")
    with pytest.raises(UnknownNameError, match="unknown dataset"):
        registry.dataset("most-popular")  # a model's name is not a dataset's


def test_typed_accessor_of_a_clashing_name_raises_the_clash():
    reg = Registry.build(load_plugins(allow=set(), objects=(ClashA(), ClashB())))
    with pytest.raises(PluginError, match="registered by two plugins"):
        reg.model("twin")


PLUGIN_FILE = ("from recbench import hookimpl, MetricSpec\n"
               "@hookimpl\n"
               "def register_metrics():\n"
               "    return [MetricSpec('first-hit', 'ranking', True, lambda ctx, k: ctx.hits[:, 0] * {w})]\n")


def test_plugin_file_code_change_without_version_bump_changes_the_fingerprint(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(PLUGIN_FILE.format(w=1.0))
    before = Registry.build(load_plugins(allow=set(), paths=(path,))).get("metric", "first-hit")
    path.write_text(PLUGIN_FILE.format(w=2.0))
    after = Registry.build(load_plugins(allow=set(), paths=(path,))).get("metric", "first-hit")
    assert before.version == after.version == "-"
    assert before.code.startswith("file:") and before.code != after.code
    path.write_text(PLUGIN_FILE.format(w=1.0))
    again = Registry.build(load_plugins(allow=set(), paths=(path,))).get("metric", "first-hit")
    assert again.code == before.code  # a fingerprint of the content, not of the time


def test_every_entry_has_a_code_fingerprint(registry):
    from recbench.provenance import core_code

    entries = [registry.get(kind, n) for kind in ("model", "dataset", "metric", "splitter")
               for n in registry.names(kind)]
    assert {e.code for e in entries} == {core_code()}  # the built-ins are recbench's own code
    reg = Registry.build(load_plugins(allow=set(), objects=(ClashA(),)))
    assert reg.get("model", "twin").code.startswith("file:")  # an object: the file defining it


class Lazy:
    """Two deferred groups: one that loads, one whose module fails to import."""

    def __init__(self):
        self.loads = 0

    def _load(self):
        self.loads += 1
        return [_model("lazy-a"), _model("lazy-b")]

    def _fail(self):
        raise ImportError("no module named 'missing_dependency'")

    @hookimpl
    def register_models(self):
        from recbench.api import Deferred
        return [_model("eager"), Deferred(("lazy-a", "lazy-b"), self._load),
                Deferred(("broken",), self._fail), Deferred(("misnamed",), self._load)]


class LazyTwin:
    @hookimpl
    def register_models(self):
        from recbench.api import Deferred
        return [Deferred(("twin",), lambda: [_model("twin")])]


def test_deferred_specs_are_named_at_once_and_built_on_first_use():
    plugin = Lazy()
    host = load_plugins(allow=set(), objects=(plugin, ClashA(), LazyTwin()))
    reg = Registry.build(host)
    assert {"eager", "lazy-a", "lazy-b", "broken", "misnamed"} <= set(reg.names("model"))
    assert plugin.loads == 0  # listing names builds nothing
    assert reg.model("lazy-b").name == "lazy-b" and reg.model("lazy-a").name == "lazy-a"
    assert plugin.loads == 1  # once for the group
    for _ in range(2):  # a failed load is kept, not retried, and keeps its cause
        with pytest.raises(PluginError, match="broken of plugin Lazy failed to load.*missing_"
                                              "depend") as failed:
            reg.model("broken")
        assert isinstance(failed.value.__cause__, ImportError)
    with pytest.raises(PluginError, match=r"declared \['misnamed'\] but loaded \['lazy-a', "):
        reg.model("misnamed")
    assert plugin.loads == 2 and reg.model("eager").name == "eager"
    with pytest.raises(PluginError, match="ClashA.*LazyTwin"):  # a deferred name clashes too
        reg.model("twin")
    error = next(p.error for p in host.plugins if p.name == "Lazy")
    assert "broken of plugin Lazy failed" in error and "misnamed of plugin Lazy" in error
    assert {"eager", "lazy-a", "lazy-b"} <= set(reg.usable("model"))
    assert not {"broken", "misnamed"} & set(reg.usable("model"))


@pytest.mark.parametrize("names", [(), ("a", "a"), "ab"])
def test_deferred_names_are_a_tuple_of_distinct_names(names):
    from recbench.api import Deferred

    with pytest.raises(PluginError, match="distinct names"):
        Deferred(names, list)


def test_plugins_and_models_commands_show_a_deferred_load_failure(tmp_path, monkeypatch, capsys):
    import json

    from recbench.cli.main import main

    path = tmp_path / "lazy_plugin.py"
    path.write_text("from recbench.api import Deferred, hookimpl\n"
                    "def _load():\n    import missing_dependency_xyz\n"
                    "@hookimpl\ndef register_models():\n"
                    "    return [Deferred(('needs-xyz',), _load)]\n")
    assert main(["--plugin", str(path), "plugins"]) == 0
    plugins = json.loads(capsys.readouterr().out)["plugins"]
    error = next(p["error"] for p in plugins if p["name"] == "lazy_plugin")
    assert "needs-xyz of plugin" in error and "missing_dependency_xyz" in error
    assert main(["--plugin", str(path), "models"]) == 0
    listing = capsys.readouterr().out
    assert "most-popular" in listing and "needs-xyz" not in listing


def test_the_builtin_models_table_names_each_submodules_specs():
    import importlib
    import pkgutil

    import recbench_builtin.models as models

    public = {m.name for m in pkgutil.iter_modules(models.__path__) if not m.name.startswith("_")}
    assert set(models.MODELS) <= public
    for module, names in models.MODELS.items():
        specs = importlib.import_module(f"{models.__name__}.{module}").SPECS
        assert tuple(s.name for s in specs) == names, module


def test_a_most_popular_run_imports_no_flax_or_optax(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "e.toml"
    config.write_text('[[datasets]]\nname = "synthetic"\nconfig = {n_users = 30, n_items = 16, mean_per_user = 6}\n'
                      '[[models]]\nname = "most-popular"\n')
    script = ("import sys; from recbench.cli.main import main; "
              f"code = main(['run', {str(config)!r}, '--results', {str(tmp_path / 'r')!r}]); "
              "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'flax', 'optax'}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out
