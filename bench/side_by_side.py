"""recbench side by side with RecBole, Cornac and LensKit on the same ML-100K split files.

Each (framework, model) runs as its own process under ``/usr/bin/time -v`` (process wall clock and
peak RSS), with cold caches: a fresh ``RECBENCH_CACHE_DIR`` for recbench (no compiled programs, no
parsed-data cache), a fresh working folder for each peer (RecBole saves no dataset). Runs are
interleaved, recbench then its peer for each work item, so each ratio comes from one moment; the
1-minute load average is read before every run and printed with the row.

The split files are made once by ``recbench split export`` (a per-user 8:1:1 split with RecBole's
part sizes, and a global random 80/20 split) and fed unchanged to every framework: RecBole reads
them as benchmark files, Cornac and LensKit as a train and a test file, recbench with the ``given``
splitter (``exclude_unknowns = true`` on the 80/20 file, as Cornac and LensKit evaluate).

The peers are installed by this script into their own virtual environments under
``--peers-dir`` (default ``~/.cache/recbench-peers/<peer>``), never into recbench's; a peer that
will not install is reported in its rows and the others go on. Each peer runs one small script
from ``bench/peers/``.

    python bench/side_by_side.py --repeats 1            # full comparison, writes side_by_side.md
    python bench/side_by_side.py --quick --works ease   # debugging: few epochs, chosen rows
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from recbench.data import Interactions
from recbench.errors import RecbenchError
from recbench.fileio import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class SideBySideError(RecbenchError):
    """A side-by-side run could not be set up or measured."""


@dataclass(frozen=True)
class PeerEnv:
    """A peer framework: what its own venv holds and which runner script drives it."""

    name: str
    requirements: tuple[str, ...]
    runner: str
    why: str = ""  # why a requirement is pinned


PEERS = {
    "recbole": PeerEnv(
        "recbole", ("torch==2.13.0", "recbole==1.2.1", "numpy<2", "pandas<3", "scipy<1.14"),
        "recbole_run.py",
        "RecBole 1.2.1 sets np.float = np.float_ (gone in NumPy 2); torch 2.13.0 is the CPU wheel"),
    "cornac": PeerEnv("cornac", ("cornac==3.0.1",), "cornac_run.py"),
    "lenskit": PeerEnv("lenskit", ("torch==2.13.0", "lenskit==2025.8.1"), "lenskit_run.py",
                       "lenskit needs torch; 2.13.0 is the CPU wheel"),
}

# The two exported splits: a recbench experiment fragment that makes each.
SPLITS = {
    "8:1:1": {"name": "ratio", "config": {"ratios": [0.8, 0.1, 0.1]}},
    "80/20": {"name": "kfold", "config": {"k": 5, "fold": 0}},  # fold 0 of 5: global random 20%
    "leave-last-out": {"name": "leave-last-out", "config": {}},  # each user's last two items
}
# The exported files' columns (``recbench split export`` writes rating and timestamp, in that
# order, when the data has them, as ML-100K does); sequential peers order histories by timestamp.
COLUMNS = ("user", "item", "rating", "timestamp")
MAX_LEN = 50  # history length of the sequential rows, both frameworks


@dataclass(frozen=True)
class Work:
    """One row: the same model in recbench and in a peer, on the same split files."""

    key: str
    title: str
    split: str
    recbench_model: str
    recbench_config: dict
    peer: str
    peer_model: str
    peer_params: dict
    quick: dict = field(default_factory=dict)  # --quick overrides: {"recbench"|"peer": {...}}
    sequential: bool = False  # full prefix as history, HR@10 and epochs reported, own table


WORKS = [
    Work("bpr-recbole", "BPR, RecBole's 8:1:1 split files", "8:1:1",
         "bpr", {"factors": 64}, "recbole", "BPR", {},
         {"recbench": {"epochs": 3}, "peer": {"epochs": 3}}),
    Work("neumf-recbole", "NeuMF, same files, RecBole's settings (1 negative, 30 epochs)", "8:1:1",
         "neumf", {"negatives": 1, "epochs": 30}, "recbole", "NeuMF", {"epochs": 30},
         {"recbench": {"epochs": 2}, "peer": {"epochs": 2}}),
    Work("ease-recbole", "EASE, same files (l2 250, RecBole's default)", "8:1:1",
         "ease", {"l2": 250.0}, "recbole", "EASE", {"reg_weight": 250.0}),
    # Cornac's BPR is per-sample SGD without early stopping: 200 epochs at rate 0.01 (at its
    # default 0.001 it stays at the popularity level); recbench's has no validation part here,
    # so it runs a fixed number of epochs too.
    Work("bpr-cornac", "BPR, global 80/20 file", "80/20",
         "bpr", {"factors": 64, "epochs": 100}, "cornac", "BPR",
         {"k": 64, "max_iter": 200, "learning_rate": 0.01, "lambda_reg": 0.01, "seed": 0},
         {"recbench": {"epochs": 3}, "peer": {"max_iter": 3}}),
    Work("mostpop-cornac", "most-popular, same file", "80/20",
         "most-popular", {}, "cornac", "MostPop", {}),
    Work("ease-lenskit", "EASE, same file (l2 250)", "80/20",
         "ease", {"l2": 250.0}, "lenskit", "EASE", {"regularization": 250.0}),
    Work("itemknn-lenskit", "item-kNN, same file (20 neighbours, cosine, no shrink)", "80/20",
         "item-knn", {"k": 20, "shrink": 0.0}, "lenskit", "ItemKNN",
         {"k": 20, "feedback": "implicit"}),
    Work("userknn-lenskit", "user-kNN, same file (20 neighbours, cosine, no shrink)", "80/20",
         "user-knn", {"k": 20, "shrink": 0.0}, "lenskit", "UserKNN",
         {"k": 20, "feedback": "implicit"}),
    # Sequential: recbench to convergence with its defaults (early stopping on validation
    # NDCG@10); RecBole at its defaults (CE loss, length 50) for at most 3 epochs / 10 minutes,
    # which is all this CPU allows it (about 70 s and 250 s an epoch unloaded).
    Work("gru4rec-recbole", "GRU4Rec, ML-100K leave-last-out files", "leave-last-out",
         "gru4rec", {"max_len": MAX_LEN, "windows": "last"}, "recbole", "GRU4Rec",
         {"epochs": 3, "budget_s": 600, "MAX_ITEM_LIST_LENGTH": MAX_LEN},
         {"recbench": {"epochs": 2}, "peer": {"epochs": 1}}, sequential=True),
    Work("sasrec-recbole", "SASRec, same files", "leave-last-out",
         "sasrec", {"max_len": MAX_LEN, "windows": "last"}, "recbole", "SASRec",
         {"epochs": 3, "budget_s": 600, "MAX_ITEM_LIST_LENGTH": MAX_LEN},
         {"recbench": {"epochs": 2}, "peer": {"epochs": 1}}, sequential=True),
]


@dataclass
class Measured:
    """One process: what it reported and what ``/usr/bin/time -v`` saw."""

    load: float
    ndcg: float | None = None
    hit: float | None = None
    masked_ndcg: float | None = None  # a sequential peer's test ranked with known items masked
    masked_hit: float | None = None
    epochs: int | None = None
    epoch_s: float | None = None  # median training epoch
    check: str = ""  # a sequential peer: its test rows against recbench's
    targets: int | None = None  # next-item targets in one training epoch
    fit_s: float | None = None
    wall_s: float | None = None
    rss_mb: float | None = None
    error: str = ""


# ---------------------------------------------------------------------------- peers' environments

def venv_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def ensure_peer(peer: PeerEnv, peers_dir: Path) -> Path:
    """The peer's venv python, creating the venv and installing its pins when they changed."""
    env_dir = peers_dir / peer.name
    marker = env_dir / "recbench-side-by-side.json"
    wanted = {"requirements": list(peer.requirements)}
    installed = marker.exists() and json.loads(marker.read_text()) == wanted
    if venv_python(env_dir).exists() and installed:
        return venv_python(env_dir)
    print(f"installing {peer.name} into {env_dir}: {' '.join(peer.requirements)}", file=sys.stderr)
    if not venv_python(env_dir).exists():
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    done = subprocess.run([str(venv_python(env_dir)), "-m", "pip", "install", "-q",
                           *peer.requirements], capture_output=True, text=True)
    if done.returncode:
        tail = [ln for ln in done.stderr.splitlines() if "is ignored" not in ln][-3:]
        raise SideBySideError(f"{peer.name} did not install into {env_dir} (pip exit "
                              f"{done.returncode}): {' / '.join(tail)}")
    atomic_write(marker, lambda f: f.write(json.dumps(wanted)))
    return venv_python(env_dir)


# ---------------------------------------------------------------------------- split files

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise SideBySideError(f"side_by_side: cannot write {v!r} as TOML")


def experiment_toml(name: str, model: str, config: dict, split: dict,
                    sequential: bool = False) -> str:
    """``sequential``: the full prefix (training + validation items) is the test history."""
    model_config = f"config = {toml_value(config)}\n" if config else ""
    metrics, history = ('["ndcg", "hit"]', "train+valid") if sequential else ('["ndcg"]', "train")
    return (f'name = "{name}"\nseeds = [0]\n\n[[datasets]]\nname = "ml-100k"\n\n'
            f'[[models]]\nname = "{model}"\n{model_config}\n'
            f'[protocol]\ntask = "ranking"\nmetrics = {metrics}\nks = [10]\n'
            f'mask_valid_in_test = true\nhistory = "{history}"\n\n'
            f'[protocol.split]\nname = "{split["name"]}"\nconfig = {toml_value(split["config"])}\n')


def export_splits(work_dir: Path, data_dir: Path) -> dict[str, dict[str, Path]]:
    """``recbench split export`` of each split in SPLITS; part name -> file, per split."""
    files = {}
    for label, split in SPLITS.items():
        slug = "split-" + re.sub(r"\W", "", label)
        toml = work_dir / f"{slug}.toml"
        toml.write_text(experiment_toml(slug, "most-popular", {}, split))
        out = work_dir / slug
        done = subprocess.run([sys.executable, "-m", "recbench", "split", "export", str(toml),
                               "--out", str(out), "--data-dir", str(data_dir)],
                              capture_output=True, text=True,
                              env={**os.environ, "RECBENCH_CACHE_DIR": str(work_dir / "cache")})
        if done.returncode:
            raise SideBySideError(f"recbench split export {toml} failed: {done.stderr.strip()}")
        files[label] = {p.stem: p for p in sorted(out.glob("*.tsv"))}
    return files


# ---------------------------------------------------------------------------- one timed process

def parse_time_v(text: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) from ``/usr/bin/time -v``'s report."""
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not wall or not rss:
        raise SideBySideError("side_by_side: /usr/bin/time -v printed no wall time or peak RSS")
    h, m, s = wall.groups()
    return int(h or 0) * 3600 + int(m) * 60 + float(s), int(rss.group(1)) / 1024


TIMED_OUT = 124


def timed(cmd: list[str], cwd: Path, env: dict, log: Path, timeout: float
          ) -> tuple[int, float | None, float | None]:
    """Run ``cmd`` under ``/usr/bin/time -v``: (exit code, wall s, peak RSS MB).

    Past ``timeout`` seconds the process group it runs in is killed and the exit code is 124."""
    report = cwd / "time-v.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(report), *cmd], cwd=cwd,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group, to kill it whole
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return TIMED_OUT, None, None
    wall, rss = parse_time_v(report.read_text())
    return rc, wall, rss


def failure(what: str, rc: int, log: Path, timeout: float) -> str:
    if rc == TIMED_OUT:
        return f"{what} killed after the {timeout:.0f} s limit (--timeout)"
    return f"{what} exit {rc}: {log_tail(log)}"


def log_tail(log: Path, lines: int = 3) -> str:
    text = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return " / ".join(text[-lines:])[-300:]


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def process_env(threads: int | None, **extra: str) -> dict[str, str]:
    """The environment of one timed process; ``threads`` caps OpenMP/BLAS pools (torch, numpy)."""
    env = {**os.environ, **extra}
    if threads:
        env.update({var: str(threads) for var in THREAD_VARS})
    return env


def run_recbench(work: Work, files: dict[str, Path], run_dir: Path, data_dir: Path,
                 quick: bool, threads: int | None, timeout: float) -> Measured:
    config = {**work.recbench_config, **(work.quick.get("recbench", {}) if quick else {})}
    split = {"name": "given", "config": {
        **{part: str(path) for part, path in files.items()},
        "exclude_unknowns": "valid" not in files}}  # the 80/20 file: as Cornac and LensKit do
    toml = run_dir / "experiment.toml"
    toml.write_text(experiment_toml(work.key, work.recbench_model, config, split,
                                    work.sequential))
    env = process_env(threads, RECBENCH_CACHE_DIR=str(run_dir / "cache"))  # cold: nothing compiled
    measured = Measured(load=os.getloadavg()[0])
    log = run_dir / "output.txt"
    rc, measured.wall_s, measured.rss_mb = timed(
        [sys.executable, "-m", "recbench", "run", str(toml), "--results", str(run_dir / "results"),
         "--data-dir", str(data_dir), "--format", "json", "-q"], run_dir, env, log, timeout)
    text = log.read_text()
    if rc or "[" not in text:
        measured.error = failure("recbench", rc, log, timeout)
        return measured
    rows, _ = json.JSONDecoder().raw_decode(text[text.index("["):])
    measured.ndcg, measured.fit_s = float(rows[0]["ndcg@10"]), float(rows[0]["fit_s"])
    if work.sequential:
        measured.hit = float(rows[0]["hit@10"])
        record = json.loads(next((run_dir / "results" / "trials").glob("*.json")).read_text())
        info = record.get("fit_info", {})
        measured.epochs, measured.epoch_s = info.get("epochs_run"), info.get("epoch_s")
        measured.targets = recbench_targets(files["train"], work.recbench_config)
    return measured


def run_peer(work: Work, files: dict[str, Path], run_dir: Path, python: Path,
             quick: bool, threads: int | None, timeout: float) -> Measured:
    params = {**work.peer_params, **(work.quick.get("peer", {}) if quick else {})}
    out = run_dir / "result.json"
    cmd = [str(python), str(HERE / "peers" / PEERS[work.peer].runner), "--model", work.peer_model,
           "--params", json.dumps(params), "--out", str(out)]
    for part, path in files.items():
        cmd += [f"--{part}", str(path)]
    if work.sequential:
        cmd += ["--sequential", "--columns", ",".join(COLUMNS), "--dump", str(run_dir / "test.tsv")]
    measured = Measured(load=os.getloadavg()[0])
    log = run_dir / "output.txt"
    rc, measured.wall_s, measured.rss_mb = timed(cmd, run_dir, process_env(threads), log, timeout)
    if rc or not out.exists():
        measured.error = failure(work.peer, rc, log, timeout)
        return measured
    result = json.loads(out.read_text())
    measured.ndcg, measured.fit_s = result["ndcg@10"], result["fit_s"]
    if work.sequential:
        measured.hit, measured.epochs = result["hit@10"], result["epochs_run"]
        measured.targets = result["train_rows"]  # one target per augmented row
        measured.masked_ndcg, measured.masked_hit = result["masked_ndcg@10"], result["masked_hit@10"]
        measured.epoch_s = statistics.median(result["epoch_s"]) if result["epoch_s"] else None
        measured.check = compare_test_rows(files, run_dir / "test.tsv")
        print(measured.check, file=sys.stderr)
    return measured


def recbench_targets(train: Path, config: dict) -> int:
    """Targets in one recbench epoch: with ``windows = "last"`` (set above, the setting the page's
    figures were measured with) a user's most recent ``max_len`` next-item pairs, all in one row;
    with ``"all"`` (the models' default) every pair."""
    counts = pd.read_csv(train, sep="\t", header=None, usecols=[0]).groupby(0).size()
    cap = config.get("max_len", MAX_LEN) if config.get("windows", "all") == "last" else None
    return int((counts - 1).clip(0, cap).sum())


def recbench_test_rows(files: dict[str, Path]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(user, test item, history) as recbench sees them: the history is the up to MAX_LEN most
    recent training + validation items in recbench's own order (``Interactions.sequences``)."""
    parts = {p: pd.read_csv(f, sep="\t", header=None, names=COLUMNS, dtype={"user": str,
                                                                           "item": str})
             for p, f in files.items()}
    users, items = (pd.Index(pd.concat([f[c] for f in parts.values()]).unique())
                    for c in ("user", "item"))

    def interactions(f: pd.DataFrame) -> Interactions:
        return Interactions(users.get_indexer(f["user"]), items.get_indexer(f["item"]), len(users),
                            len(items), timestamp=f["timestamp"].to_numpy())

    ptr, seq = Interactions.concat(interactions(parts["train"]),
                                   interactions(parts["valid"])).sequences()
    test = parts["test"]
    return [(u, i, tuple(items[seq[max(ptr[k], ptr[k + 1] - MAX_LEN):ptr[k + 1]]]))
            for u, i, k in zip(test["user"], test["item"], users.get_indexer(test["user"]))]


def compare_test_rows(files: dict[str, Path], dump: Path) -> str:
    """One line: the test rows' counts on both sides, and how many rows differ."""
    ours = recbench_test_rows(files)
    theirs = [(u, i, tuple(h.split())) for u, i, h in
              (ln.rstrip("\n").split("\t") for ln in dump.read_text().splitlines())]

    def counts(rows):
        return (f"{len({r[0] for r in rows})} users, {len({r[1] for r in rows})} distinct items, "
                f"{sum(len(r[2]) for r in rows)} history items")

    differ = len(set(ours) ^ set(theirs))  # counted on both sides: one bad row counts twice
    return (f"test rows: recbench {len(ours)} ({counts(ours)}); RecBole {len(theirs)} "
            f"({counts(theirs)}); rows that differ: {differ}")


# ---------------------------------------------------------------------------- the table

def cells(m: Measured | None) -> list[str]:
    if m is None:
        return ["", "", "", ""]
    if m.error:
        return [f"failed: {m.error}", "", "", f"{m.load:.1f}"]
    return [f"{m.ndcg:.4f}", f"{m.wall_s:.1f} s (fit {m.fit_s:.1f} s)", f"{m.rss_mb:.0f} MB",
            f"{m.load:.1f}"]


def table(rows: list[tuple[Work, Measured | None, Measured | None, str]]) -> str:
    lines = ["| work | recbench NDCG@10 | recbench wall | recbench peak RSS | load | peer | "
             "peer NDCG@10 | peer wall | peer peak RSS | load | wall ratio peer / recbench |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for work, ours, theirs, peer_note in rows:
        ratio = ""
        if ours and theirs and not ours.error and not theirs.error:
            ratio = f"{theirs.wall_s / ours.wall_s:.2f}"
        peer = f"{work.peer_model} ({peer_note})" if peer_note else work.peer_model
        lines.append("| " + " | ".join([work.title, *cells(ours), peer, *cells(theirs), ratio])
                     + " |")
    return "\n".join(lines)


def sequential_table(rows: list[tuple[Work, Measured | None, Measured | None, str]]) -> str:
    """One line per (work, framework): quality, epochs and their cost; RecBole's ranking of all
    items (its protocol for sequential models) and, in brackets, with known items masked."""
    lines = ["| work | framework | NDCG@10 | HR@10 | epochs | s/epoch (median) | targets/epoch | "
             "targets/s | wall | peak RSS | load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for work, ours, theirs, peer_note in rows:
        for name, m in (("recbench", ours), (f"{work.peer_model} ({peer_note})", theirs)):
            if m is None:
                continue
            if m.error:
                lines.append(f"| {work.title} | {name} | failed: {m.error} | | | | | | | | "
                             f"{m.load:.1f} |")
                continue
            quality = [f"{m.ndcg:.4f}", f"{m.hit:.4f}"]
            if m.masked_ndcg is not None:
                quality = [f"{m.ndcg:.4f} (masked {m.masked_ndcg:.4f})",
                           f"{m.hit:.4f} (masked {m.masked_hit:.4f})"]
            epoch = "" if m.epoch_s is None else f"{m.epoch_s:.2f}"
            rate = "" if not (m.epoch_s and m.targets) else f"{m.targets / m.epoch_s:,.0f}"
            lines.append("| " + " | ".join([
                work.title, name, *quality, f"{m.epochs:.3g}", epoch, f"{m.targets:,}", rate,
                f"{m.wall_s:.1f} s (fit {m.fit_s:.1f} s)", f"{m.rss_mb:.0f} MB",
                f"{m.load:.1f}"]) + " |")
    return "\n".join(lines)


def pick(pairs: list[tuple[Measured, Measured | None]]) -> tuple[Measured, Measured | None]:
    """The pair run at the lowest load (the larger of its two load readings)."""
    return min(pairs, key=lambda p: max(p[0].load, p[1].load if p[1] else 0.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1,
                    help="interleaved rounds; each row reports the round at the lowest load")
    ap.add_argument("--works", nargs="*", default=[],
                    help="only rows whose key contains one of these "
                         f"({', '.join(w.key for w in WORKS)})")
    ap.add_argument("--quick", action="store_true", help="few epochs, for debugging the script")
    default_data = os.environ.get("RECBENCH_DATA_DIR", ROOT.parent / "shared" / "datasets")
    ap.add_argument("--data-dir", type=Path, default=Path(default_data),
                    help="folder holding ml-100k [default: $RECBENCH_DATA_DIR or "
                         "../shared/datasets]")
    ap.add_argument("--peers-dir", type=Path, default=Path.home() / ".cache" / "recbench-peers",
                    help="where the peers' virtual environments live")
    ap.add_argument("--out", type=Path, default=HERE / "side_by_side.md",
                    help="Markdown file for the table [default: bench/side_by_side.md]")
    ap.add_argument("--threads", type=int, default=None,
                    help="set OMP/MKL/OpenBLAS thread counts for every process (torch's OpenMP "
                         "pool spins badly on a loaded machine); default: each framework's own")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds one process may run before it is killed [default: 900]")
    ap.add_argument("--keep", action="store_true", help="keep the working folder (logs, files)")
    ap.add_argument("--section", help="write the page as the section '## SECTION' of --out, "
                                      "replacing that section and keeping the rest of the file")
    args = ap.parse_args(argv)
    works = [w for w in WORKS if not args.works or any(k in w.key for k in args.works)]
    if not works:
        raise SideBySideError(f"side_by_side: no row matches {args.works}; keys: "
                              f"{', '.join(w.key for w in WORKS)}")

    pythons: dict[str, Path] = {}
    install_errors: dict[str, str] = {}
    for name in sorted({w.peer for w in works}):
        try:
            pythons[name] = ensure_peer(PEERS[name], args.peers_dir)
        except (SideBySideError, subprocess.CalledProcessError) as e:
            install_errors[name] = str(e)
            print(e, file=sys.stderr)

    load_at_start = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    work_dir = Path(tempfile.mkdtemp(prefix="recbench-side-by-side-"))
    started = datetime.now(timezone.utc)
    command = shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        split_files = export_splits(work_dir, args.data_dir)
        pairs: dict[str, list[tuple[Measured, Measured | None]]] = {w.key: [] for w in works}
        for round_ in range(args.repeats):
            for work in works:
                files = split_files[work.split]
                base = work_dir / f"round{round_}" / work.key
                (base / "recbench").mkdir(parents=True)
                (base / "peer").mkdir()
                ours = run_recbench(work, files, base / "recbench", args.data_dir, args.quick,
                                    args.threads, args.timeout)
                theirs = None
                if work.peer in pythons:
                    theirs = run_peer(work, files, base / "peer", pythons[work.peer], args.quick,
                                      args.threads, args.timeout)
                pairs[work.key].append((ours, theirs))
                print(f"round {round_}: {work.key}: recbench {cells(ours)[:3]}, "
                      f"{work.peer} {cells(theirs)[:3]}", file=sys.stderr)
                # written after every pair, so a run cut short still leaves what it measured
                text = report(args, command, started, load_at_start, works, pairs,
                              install_errors, sorted(pythons))
                page = in_section(args.out, args.section, text) if args.section else text
                atomic_write(args.out, lambda f: f.write(page))
    finally:
        if args.keep:
            print(f"working folder kept: {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(text)
    return 0


def in_section(path: Path, title: str, text: str) -> str:
    """``path``'s text with its section ``## title`` (up to the next ``## ``) set to ``text``;
    a section not there yet is appended."""
    old = path.read_text() if path.exists() else ""
    head = f"## {title}\n"
    new = f"{head}\n{text}\n"
    start = old.find(head)
    if start < 0:
        return old.rstrip("\n") + ("\n\n" if old else "") + new
    end = old.find("\n## ", start + len(head))
    return old[:start] + new + (old[end + 1:] if end >= 0 else "")


def report(args: argparse.Namespace, command: str, started: datetime, load_at_start: str,
           works: list[Work], pairs: dict[str, list[tuple[Measured, Measured | None]]],
           install_errors: dict[str, str], installed: list[str]) -> str:
    """The Markdown page: how it was measured, the table, each row's exact settings."""
    rows = []
    for work in works:
        if not pairs[work.key]:
            continue
        ours, theirs = pick(pairs[work.key])
        note = work.peer if work.peer not in install_errors else \
            f"{work.peer} not installed: {install_errors[work.peer][:200]}"
        rows.append((work, ours, theirs, note))
    done = sum(len(p) for p in pairs.values())
    header = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `python bench/side_by_side.py {command}` "
        f"on {os.cpu_count()} CPU cores ({done} of {len(works) * args.repeats} pairs run); "
        f"{args.repeats} interleaved round(s) (recbench, then its peer, row by row), each row "
        "from the round at the lowest load; `load` is the 1-minute load average just before "
        f"that process started (at the start of the run: {load_at_start}). Wall and peak RSS "
        "are the whole process's (`/usr/bin/time -v`: imports, data loading, fit, evaluation); "
        "cold caches means no compiled programs or parsed data kept by any framework (the OS "
        "page cache is not dropped); fit is what the framework itself timed. Peers: "
        + "; ".join(f"{n}: {' '.join(PEERS[n].requirements)}" for n in installed)
        + (f"; OMP/MKL/OpenBLAS threads: {args.threads}" if args.threads else
           "; thread pools at each framework's default")
        + (" (--quick: few epochs, not a measurement)" if args.quick else "") + ".\n\n")
    settings = ["", "Settings of each row (recbench model config; peer model and parameters):", ""]
    for work in works:
        settings.append(f"- {work.title}: recbench `{work.recbench_model}` "
                        f"{json.dumps(work.recbench_config)}; {work.peer} `{work.peer_model}` "
                        f"{json.dumps(work.peer_params)}; split {work.split}")
    plain = [r for r in rows if not r[0].sequential]
    sequential = [r for r in rows if r[0].sequential]
    tables = [table(plain)] if plain else []
    if sequential:
        checks = [f"- {work.title}: {theirs.check}" for work, _, theirs, _ in sequential
                  if theirs and theirs.check]
        tables.append(sequential_table(sequential) + "\n\nRecBole's test rows against "
                      "recbench's (user, test item, history of up to "
                      f"{MAX_LEN} items):\n\n" + "\n".join(checks))
    return header + "\n\n".join(tables) + "\n" + "\n".join(settings) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RecbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
