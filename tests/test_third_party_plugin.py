"""The example third-party plugin (examples/recbench-demo-plugin), installed with pip as a user
would, then driven through the real CLI in subprocesses: discovery, provenance, a run, the
allow-list; plus the contract kit on it and the tutorial's code exactly as printed.

Offline: ``pip install --no-index --no-build-isolation`` builds with the setuptools of this venv
(which must provide ``bdist_wheel``: setuptools >= 70.1, or the ``wheel`` package).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from recbench.cli.main import main
from recbench.config import load_experiment
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import validate
from recbench.testing import check_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "recbench-demo-plugin"
DIST = "recbench-demo-plugin"
MODEL = "demo-item-cooccurrence"
TUTORIAL = ROOT / "docs" / "plugin-tutorial.md"

EXPERIMENT = f"""
name = "demo-plugin-test"
seeds = [0, 1]

[[datasets]]
name = "synthetic"
config = {{n_users = 100, n_items = 50, mean_per_user = 10}}

[[models]]
name = "random"

[[models]]
name = "most-popular"

[[models]]
name = "{MODEL}"
config = {{shrink = 10.0}}

[protocol]
task = "ranking"
metrics = ["ndcg", "recall"]
ks = [10]
batch_size = 64
"""


@pytest.fixture(scope="module")
def installed(install_offline) -> Path:
    """The example distribution pip-installed (offline) into a private target directory."""
    target = install_offline(EXAMPLE)
    assert (target / "recbench_demo_plugin.py").is_file()
    assert list(target.glob("recbench_demo_plugin-0.1.0.dist-info"))
    return target


def cli(installed: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("RECBENCH_LOAD_PLUGINS", "RECBENCH_DEMO_LOG")}
    environ.update({
        "PYTHONPATH": os.pathsep.join([str(installed),
                                       *filter(None, [os.environ.get("PYTHONPATH")])]),
        "RECBENCH_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "300",
        **env,
    })
    return subprocess.run([sys.executable, "-m", "recbench", *args], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=120)


def plugins_json(installed: Path, tmp_path: Path, **env: str) -> dict:
    proc = cli(installed, tmp_path, "plugins", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plugins_lists_the_installed_distribution(installed, tmp_path):
    listing = plugins_json(installed, tmp_path)
    demo = [p for p in listing["plugins"] if p["distribution"] == DIST]
    assert len(demo) == 1, listing
    demo = demo[0]
    assert demo["name"] == "demo"
    assert demo["version"] == "0.1.0"
    assert demo["source"] == "entry-point"
    assert demo["code"].startswith("record:")  # an installed release: pinned by its RECORD
    assert demo["error"] is None
    assert demo["hooks"] == ["register_models", "run_finished"]
    assert demo["contributes"] == {"models": [MODEL]}
    assert [p["name"] for p in listing["plugins"] if p["error"]] == []
    assert listing["name_clashes"] == []



def in_process(installed: Path, monkeypatch, capsys, *args: str, allow: str | None = None
               ) -> tuple[int, str, str]:
    """The CLI in this process (start-up is 4 s a subprocess): the installation is found on
    sys.path by entry point, as in a subprocess."""
    monkeypatch.syspath_prepend(str(installed))
    if allow is None:
        monkeypatch.delenv("RECBENCH_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("RECBENCH_LOAD_PLUGINS", allow)
    monkeypatch.setenv("COLUMNS", "300")
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plugins_table_names_the_distribution(installed, monkeypatch, capsys):
    code, out, err = in_process(installed, monkeypatch, capsys, "plugins", "--format", "table")
    assert code == 0, err
    for text in (DIST, "0.1.0", MODEL, "run_finished"):
        assert text in out


def test_run_with_the_plugin_model_next_to_the_baselines(installed, tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text(EXPERIMENT)
    log = tmp_path / "runs.log"
    proc = cli(installed, tmp_path, "run", str(config), "--results", str(tmp_path / "res"),
               "--format", "json", RECBENCH_DEMO_LOG=str(log))
    assert proc.returncode == 0, proc.stderr
    # No plugin load error, name clash or hook error (the CLI prints those as "warning: ...").
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert not warnings, proc.stderr
    board = {row["model"]: row for row in json.loads(proc.stdout)}
    assert set(board) == {"random", "most-popular", MODEL}
    assert all(row["seeds"] == 2 and row["dataset"] == "synthetic" for row in board.values())
    # A real item-kNN on the planted low-rank data: far above chance.
    assert board[MODEL]["ndcg@10"] > board["random"]["ndcg@10"] + 0.05
    assert board[MODEL]["recall@10"] > board["random"]["recall@10"]

    # run_finished ran once, with every trial's record.
    assert log.read_text() == "demo-plugin-test\t6/6 trials ok\n"

    # The stored records name the model like any built-in.
    stored = [json.loads(p.read_text()) for p in (tmp_path / "res" / "trials").glob("*.json")]
    assert sorted(r["model"] for r in stored).count(MODEL) == 2

    # Resumed run: nothing left to do, but run_finished still reports all six trials.
    again = cli(installed, tmp_path, "run", str(config), "--results", str(tmp_path / "res"),
                "--format", "json", RECBENCH_DEMO_LOG=str(log))
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines() == ["demo-plugin-test\t6/6 trials ok"] * 2


def test_empty_allow_list_hides_the_plugin(installed, tmp_path, monkeypatch, capsys):
    code, out, err = in_process(installed, monkeypatch, capsys, "plugins", allow="")
    assert code == 0, err
    listing = json.loads(out)
    assert DIST not in [p["distribution"] for p in listing["plugins"]]
    assert {p["distribution"] for p in listing["plugins"]} == {"recbench"}  # built-ins still load
    names = [m for p in listing["plugins"] for m in p["contributes"].get("models", [])]
    assert "random" in names and MODEL not in names

    config = tmp_path / "exp.toml"
    config.write_text(EXPERIMENT)
    code, out, err = in_process(installed, monkeypatch, capsys, "run", str(config), "--results",
                                str(tmp_path / "res"), allow="")
    assert code == 1
    assert MODEL in err and "error:" in err
    assert not (tmp_path / "res" / "trials").exists()  # validated before any work


@pytest.mark.parametrize("allow", [DIST, "demo", f"someone-else, {DIST}"])
def test_allow_list_by_distribution_or_entry_point_name(installed, monkeypatch, allow):
    # In this process (the subprocess tests above cover the CLI): entry points are found on
    # sys.path, so the installation is discovered the same way.
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("RECBENCH_LOAD_PLUGINS", allow)
    assert DIST in {info.distribution for info in load_plugins().plugins}


def test_installed_plugin_fingerprint_follows_its_record(installed, tmp_path):
    # Subprocesses: a process fingerprints each installed distribution once.
    before = plugins_json(installed, tmp_path)
    [info] = installed.glob("recbench_demo_plugin-*.dist-info")
    record = info / "RECORD"
    original = record.read_text()
    record.write_text(original + "recbench_demo_plugin_extra.py,sha256=x,1\n")  # a reinstall
    try:
        after = plugins_json(installed, tmp_path)
    finally:
        record.write_text(original)  # the module's other tests share this installation
    code = {p["distribution"]: p["code"] for p in before["plugins"]}
    code_after = {p["distribution"]: p["code"] for p in after["plugins"]}
    assert code[DIST] != code_after[DIST]


def test_demo_model_passes_the_contract_kit():
    registry = Registry.build(load_plugins(allow=set(),
                                           paths=(EXAMPLE / "recbench_demo_plugin.py",)))
    check_model(MODEL, registry=registry)
    check_model(MODEL, registry=registry, config={"shrink": 0.0, "popularity_weight": 0.0})


def tutorial_block(lang: str, containing: str) -> str:
    blocks = re.findall(rf"^```{lang}\n(.*?)^```", TUTORIAL.read_text(), flags=re.M | re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, \
        f"docs/plugin-tutorial.md: expected one {lang} block containing {containing!r}"
    return found[0]


def test_tutorial_code_works(tmp_path):
    """The tutorial's module, pyproject and experiment, exactly as printed."""
    pyproject = tomllib.loads(tutorial_block("toml", "[project.entry-points.recbench]"))
    assert pyproject["project"]["entry-points"]["recbench"] == {"my-model": "my_model"}
    assert pyproject["tool"]["setuptools"]["py-modules"] == ["my_model"]

    module = tmp_path / "my_model.py"
    module.write_text(tutorial_block("python", "def register_models"))
    host = load_plugins(allow=set(), paths=(module,))
    registry = Registry.build(host)
    assert host.info("my_model").error is None
    assert host.info("my_model").contributes == {"models": ["my-item-knn"]}
    check_model("my-item-knn", registry=registry)
    check_model("my-item-knn", registry=registry, config={"shrink": 0.0})

    experiment = tmp_path / "exp.toml"
    experiment.write_text(tutorial_block("toml", "[[models]]"))
    validate(load_experiment(experiment), registry)  # names, configs, tasks and metrics resolve
