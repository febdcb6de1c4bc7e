"""Executors and faults: a process pool and Dask (a LocalCluster on 127.0.0.1) give the serial
leaderboard; a worker SIGKILLed mid-trial is retried, and the trial that only ran next to it is
not charged an attempt; a trial past its worker's memory fails naming it while the grid goes on;
an unreachable scheduler, a full disk, a claim caught half-written and two runs on one results
directory end cleanly. The misbehaving model is tests/executor_plugin.py.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from recbench import fileio
from recbench.claims import Claims
from recbench.cli.main import main
from recbench.config import Experiment, from_mapping
from recbench.errors import ConfigError
from recbench.executors import ExecutorConfig, make_executor
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.runner import RetryPolicy, RunOptions, Runner
from recbench.store import ResultStore, StoreError
from recbench.worker import thread_env

PLUGIN = Path(__file__).with_name("executor_plugin.py")
os.environ["RECBENCH_TEST_MAIN_PID"] = str(os.getpid())  # the plugin never kills this process


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> Registry:
    # A persistent XLA cache, handed to the workers: they load what the first run compiled.
    import jax

    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield Registry.build(load_plugins(paths=(PLUGIN,), allow=set()))
    jax.config.update("jax_compilation_cache_dir", None)


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster (2 workers of 2 threads, 1.5 GB each) reporting a worker's death at once:
    a death takes every trial its worker ran, so none is charged until one runs alone."""
    dask = pytest.importorskip("dask")
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                               host="127.0.0.1", dashboard_address=None, memory_limit="1.5GB",
                               env=thread_env(1))
    yield cluster.scheduler_address
    cluster.close()


def experiment(*flaky: dict, seeds=(0, 1)) -> Experiment:
    return from_mapping(Experiment, {
        "name": "grid", "seeds": list(seeds),
        "datasets": [{"name": "synthetic", "config": {"n_users": 40, "n_items": 20,
                                                      "mean_per_user": 6}}],
        "models": [*({"name": "flaky-popular", "config": c, "label": f"flaky {i}"}
                     for i, c in enumerate(flaky)), {"name": "most-popular"}],
        "protocol": {"metrics": ["ndcg"], "ks": [5], "batch_size": 64}})


def run(results: Path, exp: Experiment, reg: Registry, attempts: int = 3, **executor):
    options = RunOptions(results, retry=RetryPolicy(attempts, backoff_s=0.0))
    pool = make_executor(ExecutorConfig(**executor)) if executor else None
    return Runner(exp, reg, options).run(pool)


def board(records) -> dict:
    return {(r["model"], r["seed"]): r.get("metrics", r["status"]) for r in records}


@pytest.fixture(scope="module")
def serial(reg, tmp_path_factory) -> dict:
    """The leaderboard of the grid run in this process (shared by the engines' tests)."""
    root = tmp_path_factory.mktemp("serial")
    records = run(root, experiment({}, {"say": "hello"}, seeds=(0,)), reg)
    assert {r["status"] for r in records} == {"ok"}
    log = (root / next(r for r in records if r["model"] == "flaky 1")["log"]).read_text()
    assert "attempt 1 of 3" in log and "hello" in log
    assert "INFO recbench.train: said hello" in log  # though nothing shows INFO on the console
    return board(records)


def killed_once_matches_serial(tmp_path: Path, reg: Registry, serial: dict, name: str,
                               retried_as: int, slow: dict, killer: dict, **executor) -> None:
    """The grid on ``executor`` gives the serial leaderboard although the first flaky trial to
    start kills its worker (SIGKILL mid-fit) while a ``slow`` trial runs next to it. Its rerun is
    attempt ``retried_as``: 2 where its worker ran it alone, 1 where the death took the other
    trial down too (a process pool), so neither can be blamed; the slow one is never charged."""
    deaths = str(tmp_path / "deaths")
    exp = experiment({"wait_for": deaths, **slow},  # running when the second dies
                     {"say": "hello", "deaths": 1, "marker_dir": deaths, **killer}, seeds=(0,))
    records = run(tmp_path / name, exp, reg, **executor)
    assert board(records) == serial
    flaky = {r["seed"]: r for r in records if r["model"] == "flaky 1"}
    assert {r["attempt"] for r in records if r is not flaky[0]} == {1}
    log = (tmp_path / name / flaky[0]["log"]).read_text()
    assert flaky[0]["attempt"] == retried_as and log.count("--- ") == 2, log
    assert f"attempt {retried_as} of 3" in log.split("--- ")[-1], log
    assert log.count("INFO recbench.train: said hello") == 2, log
    assert not list((tmp_path / name / "claims").glob("*.claim"))


def test_a_process_pool_matches_serial_with_a_worker_killed_mid_trial(tmp_path, reg, serial,
                                                                       capfd):
    training = logging.getLogger("recbench.train")
    training.setLevel(logging.INFO)  # what -v does: the workers show the training lines too
    try:
        # The slow trial hangs until the pool's break takes it down: always lost with the killer
        # (the pool starts every worker first, so CPython's pool notices any worker's death).
        hang = str(tmp_path / "hang")  # the killer starts once the slow one hangs there
        killed_once_matches_serial(tmp_path, reg, serial, "processes", 1,
                                   {"hang_once": hang, "wait_for": ""}, {"wait_for": hang},
                                   kind="processes", workers=2)
    finally:
        training.setLevel(logging.NOTSET)
    assert "  said hello" in capfd.readouterr().err


def test_dask_matches_serial_with_a_worker_killed_and_fails_a_trial_past_its_memory(
        tmp_path, reg, serial, scheduler):
    # One test for both, so that one LocalCluster serves them under pytest-xdist too.
    killed_once_matches_serial(tmp_path, reg, serial, "dask", 1, {"sleep_s": 1.0}, {},
                               kind="dask", scheduler=scheduler)
    exp = experiment({"hog_mb": 2500}, seeds=(0,))  # past the workers' 1.5 GB
    records = run(tmp_path / "hog", exp, reg, attempts=1, kind="dask", scheduler=scheduler)
    by_model = {(r["model"], r["seed"]): r for r in records}
    assert by_model["most-popular", 0]["status"] == "ok"
    failed = by_model["flaky 0", 0]
    assert failed["status"] == "failed" and failed["stage"] == "worker died"
    assert "synthetic / flaky 0 / seed 0" in failed["error"]
    assert "out of memory" in failed["error"]


def test_an_unreachable_scheduler_is_a_one_line_error_within_seconds(tmp_path, capsys):
    config = tmp_path / "e.toml"
    config.write_text('[[datasets]]\nname = "synthetic"\nconfig = {n_users = 30, n_items = 16, mean_per_user = 6}\n'
                      '[[models]]\nname = "most-popular"\n')
    # A port bound but not listening, held through the run so that no other test's cluster
    # can take it meanwhile: connecting is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.perf_counter()
        code = main(["run", str(config), "--results", str(tmp_path / "r"), "--executor", "dask",
                     "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 1 and time.perf_counter() - t0 < 20
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")


def test_a_full_disk_leaves_no_half_record_and_the_next_run_completes(tmp_path, reg,
                                                                      monkeypatch):
    real = fileio.atomic_create

    def full_disk(path, write, mode="w"):
        def half(f):
            f.write("{\"key\": ")  # part of the record reaches the temporary file, then no room
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, half, mode)

    monkeypatch.setattr("recbench.store.atomic_create", full_disk)
    exp = experiment({})
    with pytest.raises(StoreError, match="No space left on device.*run again"):
        run(tmp_path / "r", exp, reg)
    trials = tmp_path / "r" / "trials"
    assert not [p for p in trials.iterdir() if p.suffix == ".json" or p.name.endswith(".tmp")]
    assert not list(trials.glob("*.npz"))  # the values of the record that was not written
    assert not list((tmp_path / "r" / "claims").glob("*.claim"))
    monkeypatch.setattr("recbench.store.atomic_create", real)
    assert {r["status"] for r in run(tmp_path / "r", exp, reg)} == {"ok"}


def test_two_runs_on_one_results_directory_store_each_trial_once(tmp_path, reg):
    exp = experiment({"sleep_s": 0.3}, {"sleep_s": 0.3, "say": "b"}, seeds=(0, 1, 2))
    out: dict[int, list] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, run(tmp_path, exp, reg)))
               for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert board(out[0]) == board(out[1]) and len(out[0]) == 9
    assert {r["status"] for r in out[0]} == {"ok"}
    logs = sorted((tmp_path / "logs").glob("*.log"))
    assert len(logs) == 9 and all(p.read_text().count("--- ") == 1 for p in logs)  # ran once
    assert len(list(ResultStore(tmp_path).records())) == 9


def test_a_stale_claim_is_taken_over_as_the_next_attempt_and_a_live_one_is_left(tmp_path):
    claims = Claims(tmp_path, lease_s=60)
    first = claims.claim("k")
    assert first.attempt == 1 and claims.claim("k")["pid"] == os.getpid()  # live: left alone
    dead = {**first.holder, "pid": 2 ** 22 + 17}  # a pid that does not run
    first.path.write_text(json.dumps(dead))
    second = claims.claim("k")
    assert second.attempt == 2 and second.previous["pid"] == dead["pid"]
    claims.release(first)  # not ours any more: stays
    assert claims.holder("k")["token"] == second.holder["token"]
    claims.release(second)
    assert claims.holder("k") is None
    other = {**second.holder, "host": "elsewhere"}
    second.path.write_text(json.dumps(other))
    assert claims.holder("k") is not None  # another host's claim with a fresh heartbeat
    os.utime(second.path, (time.time() - 120, time.time() - 120))
    assert claims.holder("k") is None  # its heartbeat stopped past the lease


@contextlib.contextmanager
def claim_held_by_a_child(claims: Claims, key: str) -> Iterator[subprocess.Popen]:
    """A claim on ``key`` whose holder is a sleeping child process (killed at the end)."""
    mine = claims.claim(key)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {**mine.holder, "pid": child.pid,
                  "pid_started": psutil.Process(child.pid).create_time()}
        mine.path.write_text(json.dumps(holder))
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_claim_of_a_killed_process_not_yet_reaped_is_stale(tmp_path):
    # A SIGKILLed worker stays a zombie until its parent (a Dask nanny) reaps it; under load that
    # took long enough for a forgiven trial to be charged an attempt.
    claims = Claims(tmp_path, lease_s=60)
    with claim_held_by_a_child(claims, "k") as child:
        assert claims.holder("k") is not None  # running: live
        child.kill()
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert claims.holder("k") is None  # killed, not yet reaped: stale
        claims.forgive("k")
        assert claims.claim("k").attempt == 1


def test_a_claim_of_a_worker_reported_dead_is_forgiven_once_its_process_has_exited(tmp_path):
    # A scheduler hears of a SIGKILLed worker when its sockets close, which can come before the
    # kernel has finished the process; forgiving at that moment left the claim to be charged.
    claims = Claims(tmp_path, lease_s=60)
    with claim_held_by_a_child(claims, "k") as child:
        t0 = time.monotonic()
        claims.forgive("k", died=child.pid + 1)  # another process died: not waited for
        assert time.monotonic() - t0 < 1 and claims.holder("k") is not None
        threading.Timer(0.3, child.kill).start()
        claims.forgive("k", died=child.pid)  # still running when the engine reports it
        assert claims.claim("k").attempt == 1


def test_a_claim_being_written_is_live_and_a_forgiven_one_keeps_its_attempt(tmp_path):
    claims = Claims(tmp_path, lease_s=60)
    claims.dir.mkdir()
    os.close(os.open(claims.dir / "k.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # no JSON yet
    assert not hasattr(claims.claim("k"), "attempt")  # not taken over: its writer may be alive
    os.utime(claims.dir / "k.claim", (time.time() - 61, time.time() - 61))
    assert claims.claim("k").attempt == 1  # nothing came past the lease: taken over
    second = claims.claim("j", attempt=2)
    claims.forgive("j")  # live: left as it is
    assert claims.holder("j")["token"] == second.holder["token"]
    second.path.write_text(json.dumps({**second.holder, "pid": 2 ** 22 + 17}))  # died
    claims.forgive("j")
    claims.forgive("j")  # once only
    assert claims.holder("j") is None and claims.claim("j").attempt == 2
    claims.drop_stale("j")  # ours, live: stays
    assert claims.holder("j") is not None


def test_a_trial_whose_worker_died_before_claiming_it_is_failed_and_leaves_no_claim(tmp_path):
    from types import SimpleNamespace

    from recbench.executors import Processes
    from recbench.records import PlannedTrial

    claims = Claims(tmp_path)
    claim = claims.claim("k")
    claim.path.write_text(json.dumps({**claim.holder, "pid": 2 ** 22 + 17}))  # its worker died
    runner = SimpleNamespace(claims=claims, options=SimpleNamespace(retry=RetryPolicy(1)),
                             _store=lambda record, per_user, trial: record)
    trial, deaths = PlannedTrial("k", "synthetic", "flaky", 0, False, {}), {}
    assert Processes()._lost(runner, trial, deaths) is None  # one death: submitted again
    record = Processes()._lost(runner, trial, deaths)
    assert record["stage"] == "worker died" and "died in each of 2 attempts" in record["error"]
    assert not claim.path.exists()  # the next run starts the trial afresh


def test_values_shared_by_a_stored_record_survive_a_failed_write(tmp_path, monkeypatch):
    values = {"ndcg@5": np.array([0.5, 1.0])}
    first = ResultStore(tmp_path)
    assert first.put({"key": "k", "status": "ok"}, values) == "stored"
    second = ResultStore(tmp_path)  # another run that had not seen it stored yet
    monkeypatch.setattr(second, "has", lambda key: False)

    def full_disk(path, write, mode="w"):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("recbench.store.atomic_create", full_disk)
    with pytest.raises(OSError):
        second.put({"key": "k", "status": "ok"}, values)
    assert ResultStore(tmp_path).get("k")["status"] == "ok"  # its per-user file is still there


@pytest.mark.parametrize("options, message", [
    ({"kind": "processes", "scheduler": "tcp://127.0.0.1:8786"}, "use it with --executor dask"),
    ({"kind": "dask", "scheduler": "127.0.0.1:8786"}, "an address like tcp://"),
    ({"kind": "processes", "memory_limit": "2GB"}, "local Dask cluster"),
    ({"kind": "dask", "workers": 0}, "positive integer"),
    ({"kind": "threads"}, "serial, processes or dask")])
def test_executor_options_are_checked_up_front(options, message):
    with pytest.raises(ConfigError, match=message):
        ExecutorConfig(**options)


def test_plugins_registered_in_process_cannot_go_to_workers(tmp_path):
    import executor_plugin

    reg = Registry.build(load_plugins(allow=set(), objects=(executor_plugin,)))
    with pytest.raises(ConfigError, match="registered in this process.*--plugin FILE"):
        run(tmp_path, experiment({}), reg, kind="processes", workers=1)
