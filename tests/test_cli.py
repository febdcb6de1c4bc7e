"""The command line: the default run, plugins listing, one-line errors with a non-zero exit."""

from __future__ import annotations

import json

from recbench.cli.main import main
from recbench.cli.run_cmd import default_experiment
from recbench.plugins import BUILTIN_DIST


def test_default_experiment_tours_the_builtin_families(registry):
    exp = default_experiment(registry)
    names = {m.name for m in exp.models}
    assert {"random", "most-popular"} <= names
    assert all("ranking" in registry.model(n).tasks for n in names)
    assert all(registry.get("model", n).distribution == BUILTIN_DIST for n in names)
    families = {registry.model(n).family for n in names}
    assert {"baseline", "cf-user", "cf-item", "latent-factor", "content"} <= families
    # A lighter config is labelled as such, so the leaderboard never passes it off as the model's.
    assert all(m.display == m.name or "light" in m.display
               for m in exp.models if m.config)
    assert [d.name for d in exp.datasets] == ["online-retail"]


def test_default_run_prints_a_leaderboard(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast = ["--model", "random", "--model", "most-popular"]  # the full default belongs in CI's main job
    assert main(["run", *fast, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    board = json.loads(out)
    assert {row["model"] for row in board} == {"random", "most-popular"}
    # What the tour leaves out is said with its leaderboard: NeuMF is not in it.
    left_out = err.split("not in it: ")[1].split(".")[0].split(", ")
    assert "neumf" in left_out and "bpr" not in left_out
    assert all(row["dataset"] == "online-retail" for row in board)
    assert (tmp_path / "recbench-results" / "default" / "trials").is_dir()
    assert main(["run", *fast, "--format", "markdown"]) == 0  # second run: served from the store
    out = capsys.readouterr().out
    assert out.startswith("### online-retail · ranking") and "| model | family |" in out
    assert main(["leaderboard", "recbench-results/default", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("dataset,model,seeds,")


def test_plugins_lists_builtins(capsys, monkeypatch):
    monkeypatch.setenv("RECBENCH_LOAD_PLUGINS", "")
    assert main(["plugins"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in listing["plugins"]}
    assert {"random", "most-popular"} <= set(names["builtin-models"]["contributes"]["models"])
    assert names["builtin-models"]["hooks"] == ["register_models"]
    assert main(["plugins", "--format", "table"]) == 0
    assert "builtin-metrics" in capsys.readouterr().out


def test_errors_are_one_line_and_non_zero(tmp_path, capsys):
    exp = tmp_path / "exp.toml"
    exp.write_text('[[models]]\nname = "most-populr"\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: unknown model 'most-populr'") and "'most-popular'" in err
    assert main(["--traceback", "run", str(exp), "--results", str(tmp_path / "r")]) == 1
    assert "Traceback" in capsys.readouterr().err
    exp.write_text('[[models]]\nname = "random"\n[protocol]\ntask = "rating"\nmetrics = ["ndcg"]\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "r")]) == 1
    assert "is a ranking metric" in capsys.readouterr().err
    assert main(["run", "--model", "nope", "--results", str(tmp_path / "r")]) == 1
    assert "--model 'nope' is not in the experiment" in capsys.readouterr().err


def test_rating_and_binary_tasks_run(tmp_path, capsys):
    exp = tmp_path / "exp.toml"
    exp.write_text('[[datasets]]\nname = "synthetic"\nconfig = {n_users = 60, n_items = 30, '
                   'mean_per_user = 8}\n[[models]]\nname = "random"\n'
                   '[protocol]\ntask = "rating"\nmetrics = ["rmse", "mae"]\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "r"), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert 1.0 < row["rmse"] < 2.5  # a random N(mean, std) predictor on 1-5 ratings
    exp.write_text('[[datasets]]\nname = "synthetic"\nconfig = {n_users = 60, n_items = 30, '
                   'mean_per_user = 8}\n[[models]]\nname = "most-popular"\n[[models]]\n'
                   'name = "random"\n[protocol]\ntask = "binary"\n'
                   'metrics = ["roc_auc", "accuracy", "log_loss"]\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "b"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {"most-popular", "random"}


FAILING_PLUGIN = '''
from dataclasses import dataclass
from recbench import ModelSpec, hookimpl

@dataclass(frozen=True)
class Diverges:
    def fit(self, train, *, valid=None, key):
        raise FloatingPointError("diverged")

@dataclass(frozen=True)
class Reports:
    fit_info = {"epochs_run": 2}

    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        import jax.numpy as jnp
        return jnp.zeros((batch.users.shape[0], batch.n_items), jnp.float32)

@hookimpl
def register_models():
    return [ModelSpec("diverges", "baseline", frozenset({"ranking"}), lambda c, x: Diverges()),
            ModelSpec("reports", "baseline", frozenset({"ranking"}), lambda c, x: Reports())]
'''

TINY_EXPERIMENT = ('[[datasets]]\nname = "synthetic"\nconfig = {n_users = 60, n_items = 30, '
                   'mean_per_user = 8}\n[[models]]\nname = "most-popular"\n[[models]]\n'
                   'name = "diverges"\n[[models]]\nname = "reports"\n'
                   '[protocol]\nmetrics = ["ndcg"]\nks = [5]\n')


def test_failed_trials_exit_3_after_the_board_with_one_progress_line_per_trial(tmp_path, capsys):
    plugin = tmp_path / "diverging.py"
    plugin.write_text(FAILING_PLUGIN)
    exp = tmp_path / "exp.toml"
    exp.write_text(TINY_EXPERIMENT)
    args = ["--plugin", str(plugin), "run", str(exp), "--results", str(tmp_path / "r"),
            "--format", "csv"]
    assert main([*args, "-v"]) == 3
    out = capsys.readouterr()
    assert out.out.startswith("dataset,model,seeds,") and "most-popular" in out.out
    assert "users_evaluated,users_excluded" in out.out.splitlines()[0]
    lines = [line for line in out.err.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1/3] synthetic / most-popular / seed 0: ndcg@5 ")
    assert " s" in lines[0] and "fit " in lines[0]
    assert lines[1] == "[2/3] synthetic / diverges / seed 0: failed: FloatingPointError: diverged"
    assert lines[2].startswith("[3/3] synthetic / reports / seed 0: ndcg@5 0.")
    assert lines[2].endswith(" s (epochs_run 2)")  # -v: what the model reported
    assert main([*args, "-q"]) == 3  # the failure is retried, quietly
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]


def test_a_dataset_that_cannot_load_stops_the_run_with_one_line(tmp_path, capsys):
    exp = tmp_path / "exp.toml"
    exp.write_text(f'[[datasets]]\nname = "files"\nconfig = {{path = "{tmp_path}/none.csv"}}\n'
                   '[[models]]\nname = "random"\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: datasets[0]: dataset 'files' could not "
                                                   "be loaded")
    assert not (tmp_path / "r" / "trials").exists()
    assert main(["run", str(exp), "--results", str(tmp_path / "r"), "--traceback"]) == 1
    assert "Traceback" in capsys.readouterr().err  # --traceback also after the subcommand


def test_verbose_run_shows_each_validated_epoch_and_binary_runs_show_the_constant_reference(
        tmp_path, capsys):
    exp = tmp_path / "e.toml"
    exp.write_text('[[datasets]]\nname = "synthetic"\nconfig = { n_users = 60, n_items = 40, mean_per_user = 8 }\n'
                   '[[models]]\nname = "bpr"\nconfig = { epochs = 2, factors = 4 }\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "r"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1: loss " in err and "epoch 2: loss " in err and ", validation " in err
    exp.write_text('[[datasets]]\nname = "synthetic"\nconfig = { n_users = 60, n_items = 40, mean_per_user = 8 }\n'
                   '[[models]]\nname = "random"\n[protocol]\ntask = "binary"\n'
                   'metrics = ["log_loss", "accuracy"]\n')
    assert main(["run", str(exp), "--results", str(tmp_path / "b")]) == 0
    assert "log loss ln 2 = 0.6931" in capsys.readouterr().err
