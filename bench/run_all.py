"""One benchmark report: every speed and memory figure of recbench on this machine, one run.

Sections (``--sections``, all by default; ``--quick`` drops ``scale``):

- ``eval``: full-ranking evaluation at ML-1M size against the jitted GEMM + mask + top-k floor
  (``bench_evaluate.measure``);
- ``scale``: ML-20M size (``bench_scale.py`` in a child process): BPR epochs, evaluation
  throughput against its floor, low-rank EASE fit, peak host and device memory;
- ``models``: every registered model at ML-1M size (the synthetic generator, 80/20 split), each
  in its own process under ``/usr/bin/time`` (peak RSS): a gradient model (its config has
  ``epochs`` and ``learning_rate``) trains 2 epochs and reports the second's time
  (``fit_info["epoch_s"]``), any other model fits twice and reports the second fit; compile time
  of the first fit from a ``CompileClock``;
- ``run``: the default ``recbench run`` end to end (a child process, cold cache and results
  directories);
- ``executors``: the serial against the dask executor on one small grid, from
  ``bench_executors.measure()`` where that script exists.

It writes ``bench/RESULTS.md`` (``--out``): the machine (CPU model and cores from /proc/cpuinfo,
memory), the load average before and after each row, the date and the git commit, and one
Markdown table. Ratios, not asserts; not part of the test suite.

    nice -n 10 python bench/run_all.py [--quick] [--sections eval models run ...]
                                       [--models bpr ease ...] [--timeout 600]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ("scale", "eval", "models", "run", "executors")


@dataclasses.dataclass
class Row:
    section: str
    what: str
    value: str  # the measured figure, with its unit
    reference: str = ""  # what it is compared to, measured in the same run
    ratio: str = ""
    compile_s: str = ""
    peak_mb: str = ""
    load: str = ""  # load average before -> after
    note: str = ""


def _load() -> float:
    return os.getloadavg()[0]


def _fmt(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def machine() -> str:
    """CPU model and count (/proc/cpuinfo), memory (/proc/meminfo), Python, JAX and devices."""
    import jax

    def grab(path: str, pattern: str) -> str | None:
        p = Path(path)
        found = re.search(pattern, p.read_text()) if p.exists() else None
        return found.group(1).strip() if found else None

    cpu = grab("/proc/cpuinfo", r"model name\s*:\s*(.+)") or platform.processor()
    mem_kb = grab("/proc/meminfo", r"MemTotal:\s*(\d+)")
    mem = f", {int(mem_kb) / 2**20:.1f} GiB memory" if mem_kb else ""
    return (f"{cpu}, {os.cpu_count()} CPUs{mem}; python {platform.python_version()}, jax "
            f"{jax.__version__} on {jax.default_backend()} x{jax.device_count()}")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def timed_child(cmd: list[str], timeout: float, env: dict | None = None
                ) -> tuple[subprocess.CompletedProcess | None, float, float | None]:
    """``cmd`` under ``/usr/bin/time -v``: (process or None on timeout, wall s, peak RSS MiB)."""
    t0 = time.perf_counter()
    wrapper = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    try:
        proc = subprocess.run(wrapper + cmd, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, None
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return proc, time.perf_counter() - t0, int(peak.group(1)) / 1024 if peak else None


def _last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


# ---------------------------------------------------------------- sections


def section_eval(args) -> list[Row]:
    sys.path.insert(0, str(HERE))
    from bench_evaluate import measure

    before = _load()
    r = measure(batch_sizes=(256, 512), repeats=args.repeats, log=lambda *_: None)
    return [Row("eval", f"ML-1M full ranking, 6,040 users x 3,706 items, 64-d, top-10, "
                        f"batch {r['batch_size']}",
                f"{r['recbench_s']:.3f} s ({r['users'] / r['recbench_s']:,.0f} users/s)",
                f"floor {r['floor_s']:.3f} s", f"{r['ratio']:.2f}x (goal <= 1.25x)",
                _fmt(r["compile_s"], 2), f"{r['peak_rss_mb']:.0f}", f"{before:.1f} -> {_load():.1f}",
                f"medians of {args.repeats}; minima {r['recbench_min_s']:.3f} vs "
                f"{r['floor_min_s']:.3f} s; score {r['score_s']:.3f} s, rank {r['rank_s']:.3f} s")]


def section_scale(args) -> list[Row]:
    before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scale.json"
        proc, wall, peak = timed_child([sys.executable, str(HERE / "bench_scale.py"), "--json",
                                        str(out)], args.scale_timeout)
        failed = None
        if proc is None or proc.returncode != 0:
            failed = (f"timed out after {args.scale_timeout:.0f} s" if proc is None else
                      (proc.stderr.strip().splitlines() or ["?"])[-1][:160])
        if not out.exists():
            return [Row("scale", "ML-20M size", f"not measured: {failed}", load=f"{before:.1f}")]
        r = json.loads(out.read_text())  # the sections finished before any failure
    load = f"{r['load']['start']:.1f} -> {r['load']['end']:.1f}"
    d, rows = r["data"], []
    rows.append(Row("scale", f"synthetic ML-20M data: {d['users']:,} x {d['items']:,}, "
                             f"{d['train']:,} train / {d['test']:,} test",
                    f"{d['seconds']:.1f} s to generate and split", peak_mb=f"{d['peak_rss_mb']:.0f}",
                    load=load))
    if "bpr" in r:
        b = r["bpr"]
        rows.append(Row("scale", f"bpr at ML-20M size, {b['epochs']} epochs, batch "
                                 f"{b['batch_size']:,}",
                        f"{b['epoch_s']:.2f} s per epoch ({b['fit_s']:.1f} s fit)",
                        compile_s=_fmt(b["compile_s"], 2), peak_mb=f"{b['peak_rss_mb']:.0f}",
                        load=load, note=_device_note(b)))
    if "eval" in r:
        e = r["eval"]
        rows.append(Row("scale", f"ML-20M full ranking of {e['users']:,} users, 64-d, top-"
                                 f"{e['k']}, batch {e['batch_size']}",
                        f"{e['recbench_s']:.1f} s ({e['recbench_users_per_s']:,.0f} users/s)",
                        f"floor {e['floor_s']:.1f} s ({e['floor_users_per_s']:,.0f} users/s)",
                        f"{e['ratio']:.2f}x", _fmt(e["recbench_compile_s"], 2),
                        f"{e['peak_rss_mb']:.0f}", load,
                        f"score buffer {e['score_buffer_mb']:.0f} MiB; " + _device_note(e)))
    if "ease" in r:
        a = r["ease"]
        rows.append(Row("scale", f"ease-lowrank at ML-20M size, rank {a['rank']}",
                        f"{a['fit_s']:.1f} s fit", compile_s=_fmt(a["compile_s"], 2),
                        peak_mb=f"{a['peak_rss_mb']:.0f}", load=load,
                        note=f"factored weights {a['weights_mb']:.0f} MiB (exact EASE: "
                             f"{d['items'] ** 2 * 4 / 2**30:.1f} GiB per n_items^2 matrix)"))
    rows.append(Row("scale", "ML-20M child process", f"{wall:.0f} s wall",
                    peak_mb=_fmt(peak, 0), load=load,
                    note=f"stopped: {failed}; sections not listed were not reached" if failed
                    else "every section finished"))
    return rows


def _device_note(r: dict) -> str:
    if "device_peak_mb" in r:
        return f"device peak {r['device_peak_mb']:.0f} MiB"
    return f"live JAX buffers after {r.get('device_live_mb', 0):.0f} MiB (CPU reports no peak)"


def model_child(name: str) -> dict:
    """In a fresh process: fit ``name`` at ML-1M size; one JSON line of timings."""
    sys.path.insert(0, str(HERE))
    import jax
    from bench_scale import make_dataset

    from recbench.config import from_mapping
    from recbench.plugins import load_plugins
    from recbench.registry import Registry
    from recbench.specs import ModelContext, fit_info, item_text_of
    from recbench.timing import CompileClock

    registry = Registry.build(load_plugins(allow=set()))
    spec = registry.model(name)
    fields = {f.name for f in dataclasses.fields(spec.config)}
    gradient = {"epochs", "learning_rate"} <= fields
    cfg = from_mapping(spec.config, {"epochs": 2} if "epochs" in fields else {},
                       where=f"model {name!r}")
    ds, train, _ = make_dataset("ml-1m")
    ctx = ModelContext(train.n_users, train.n_items, ds.item_features, ds.user_features,
                       item_text=item_text_of(ds))
    key = jax.random.key(0)

    def fit() -> tuple[object, float, float]:
        with CompileClock() as clock:
            t0 = time.perf_counter()
            fitted = spec.factory(cfg, ctx).fit(train, key=key)
            jax.block_until_ready(jax.tree.leaves(getattr(fitted, "__dict__", {})))
        return fitted, time.perf_counter() - t0, clock.seconds()

    fitted, first_s, compile_s = fit()
    out = {"model": name, "family": spec.family, "gradient": gradient, "first_s": first_s,
           "compile_s": compile_s, "interactions": len(train)}
    if gradient:
        out["epoch_s"] = fit_info(fitted).get("epoch_s")
    else:
        _, out["fit_s"], _ = fit()
    return out


def section_models(args) -> list[Row]:
    from recbench.plugins import load_plugins
    from recbench.registry import Registry

    names = args.models or Registry.build(load_plugins(allow=set())).names("model")
    rows = []
    for name in names:
        before = _load()
        proc, wall, peak = timed_child([sys.executable, str(Path(__file__).resolve()),
                                        "--model-child", name], args.timeout)
        load = f"{before:.1f} -> {_load():.1f}"
        if proc is None or proc.returncode != 0:
            why = (f"timed out after {args.timeout:.0f} s" if proc is None else
                   (proc.stderr.strip().splitlines() or ["?"])[-1][:160])
            rows.append(Row("models", name, f"not measured: {why}", load=load))
            continue
        r = _last_json(proc.stdout)
        if r["gradient"]:
            value = (f"{r['epoch_s']:.2f} s per epoch" if r.get("epoch_s") is not None else
                     f"{r['first_s']:.2f} s for 2 epochs")
            what = f"{name} ({r['family']}): epoch over {r['interactions']:,} interactions"
        else:
            value = f"{r['fit_s']:.2f} s fit"
            what = f"{name} ({r['family']}): fit on {r['interactions']:,} interactions"
        rows.append(Row("models", what, value, compile_s=_fmt(r["compile_s"], 2),
                        peak_mb=_fmt(peak, 0), load=load,
                        note=f"process {wall:.0f} s (imports, data, fits)"))
    return rows


def section_run(args) -> list[Row]:
    before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RECBENCH_CACHE_DIR": str(Path(tmp) / "cache")}
        exe = Path(sys.executable).with_name("recbench")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "recbench"]
        proc, wall, peak = timed_child(cmd + ["run", "--results", str(Path(tmp) / "results"),
                                              "--quiet"], args.timeout, env)
    load = f"{before:.1f} -> {_load():.1f}"
    if proc is None or proc.returncode != 0:
        why = (f"timed out after {args.timeout:.0f} s" if proc is None else
               (proc.stderr.strip().splitlines() or ["?"])[-1])
        return [Row("run", "default `recbench run`", f"not measured: {why}", load=load)]
    return [Row("run", "default `recbench run` end to end (cold cache and results)",
                f"{wall:.1f} s wall", peak_mb=_fmt(peak, 0), load=load,
                note="child process: imports, data, every default trial, the leaderboard")]


def section_executors(args) -> list[Row]:
    before = _load()
    sys.path.insert(0, str(HERE))
    try:
        from bench_executors import measure  # written with the executors; may be absent
    except ImportError as e:
        return [Row("executors", "serial vs dask on one small grid",
                    f"not measured: bench/bench_executors.py cannot be imported ({e})",
                    load=f"{before:.1f}")]
    try:
        result = measure()
    except Exception as e:  # noqa: BLE001 - the report records any failure and goes on
        return [Row("executors", "serial vs dask on one small grid",
                    f"not measured: measure() failed ({type(e).__name__}: {e})",
                    load=f"{before:.1f}")]
    load = f"{before:.1f} -> {_load():.1f}"
    if not isinstance(result, dict) or "serial_s" not in result:
        return [Row("executors", "serial vs dask on one small grid", str(result), load=load)]
    # {"serial_s": ..., "<executor>_s": ..., plus the grid's sizes}: one row per executor.
    sizes = ", ".join(f"{k} {v}" for k, v in result.items() if not k.endswith("_s"))
    serial = result["serial_s"]
    return [Row("executors", f"{key[:-2]} executor, one small grid ({sizes})",
                f"{value:.1f} s wall", "" if key == "serial_s" else f"serial {serial:.1f} s",
                "" if key == "serial_s" else f"{value / serial:.2f}x", load=load)
            for key, value in result.items() if key.endswith("_s")]


RUNNERS = {"eval": section_eval, "scale": section_scale, "models": section_models,
           "run": section_run, "executors": section_executors}


# ---------------------------------------------------------------- the report


def write_report(rows: list[Row], path: Path, *, started: str, sections: list[str],
                 load: tuple[float, float], seconds: float) -> None:
    head = ["section", "what", "measured", "reference (same run)", "ratio", "compile s",
            "peak RSS MiB", "load", "note"]
    lines = [
        "# recbench benchmark results",
        "",
        f"Made by `{' '.join(['python bench/run_all.py', *sys.argv[1:]])}` on {started} UTC, "
        f"git commit `{git_commit()}`, in {seconds / 60:.1f} minutes.",
        f"Machine: {machine()}. Load average {load[0]:.1f} at the start, {load[1]:.1f} at the "
        "end (a 2-core machine shared with other work: compare ratios within this run, not "
        "seconds across runs).",
        f"Sections: {', '.join(sections)}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r.section, r.what, r.value, r.reference, r.ratio, r.compile_s, r.peak_mb,
                 r.load, r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="skip the ML-20M section")
    ap.add_argument("--models", nargs="+", help="models of the models section (default: all)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per child process")
    ap.add_argument("--scale-timeout", type=float, default=3600.0)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--model-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model_child:
        print(json.dumps(model_child(args.model_child)))
        return
    sections = [s for s in args.sections if not (args.quick and s == "scale")]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load0, t0 = _load(), time.perf_counter()
    rows: list[Row] = []
    for name in sections:
        print(f"[{time.perf_counter() - t0:6.0f} s] {name} (load {_load():.1f})", flush=True)
        rows += RUNNERS[name](args)
        for r in rows[-1:]:
            print(f"    last row: {r.what}: {r.value}", flush=True)
        write_report(rows, args.out, started=started, sections=sections,
                     load=(load0, _load()), seconds=time.perf_counter() - t0)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
