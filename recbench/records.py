"""The trial record: what the runner stores for every trial, as typed dictionaries.

A record is plain JSON (it is written to the result store as is), so its schema is a set of
:class:`typing.TypedDict` classes rather than dataclasses. Every key and its unit is documented in
``docs/trial-record.md``; a test keeps the two in step and checks records written by a real run
against :func:`schema_problems`. All times are seconds of wall time, all memory is MiB.
"""

import traceback
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from .specs import FitInfoValue

Status = Literal["ok", "failed", "unsupported", "missing"]


class DatasetIdentity(TypedDict):
    name: str
    config: dict[str, Any]
    checksum: str


class ModelIdentity(TypedDict):
    name: str
    config: dict[str, Any]
    search: NotRequired[dict[str, list[Any]]]


class TrialIdentity(TypedDict):
    dataset: DatasetIdentity
    protocol: dict[str, Any]
    model: ModelIdentity
    seed: int
    fold: NotRequired[int]
    split_inputs: NotRequired[str]
    recbench: str
    plugins: dict[str, str]
    recbench_code: str


class DataShape(TypedDict):
    users: int
    items: int
    train: int
    valid: int
    test: int


class Provenance(TypedDict):
    dataset_checksum: str
    split_fingerprint: str
    split_protocol: dict[str, Any]
    versions: dict[str, str]
    hardware: dict[str, Any]
    git_commit: str | None
    data_shape: DataShape


class Timings(TypedDict):
    fit_s: float
    fit_compile_s: float
    fit_steady_s: float
    eval_s: float
    eval_compile_s: float
    eval_steady_s: float
    score_s: float
    rank_s: NotRequired[float]
    metrics_s: NotRequired[float]


class Counts(TypedDict, total=False):
    users_evaluated: int
    users_excluded: int
    batch_size: int
    batches: int
    pairs: int


class Memory(TypedDict):
    peak_host_mb: float
    peak_host_scope: Literal["trial", "process"]
    peak_device_mb: float | None


class Files(TypedDict):
    per_user: str
    per_user_sha256: str


class SavedModel(TypedDict):
    """Where ``recbench run --save-models`` put the fitted model (or why it could not)."""

    file: NotRequired[str]
    sha256: NotRequired[str]
    bytes: NotRequired[int]
    error: NotRequired[str]


class TriedSetting(TypedDict):
    config: dict[str, Any]
    score: float | None  # None: the fit failed (error) or the validation value was NaN
    fit_s: float
    best_epoch: NotRequired[int]
    error: NotRequired[str]


class TuningRecord(TypedDict):
    """What ``protocol.tuning`` tried on the validation part and chose (see recbench.tuning)."""

    metric: str
    refit: bool
    tried: list[TriedSetting]
    chosen: dict[str, Any]
    validation: str | dict[str, Any]
    refit_epochs: NotRequired[int]


class RetryPolicyRecord(TypedDict):
    attempts: int
    backoff_s: float


class Worker(TypedDict):
    host: str
    pid: int


class TrialRecord(TypedDict):
    key: str
    dataset: str
    model: str
    seed: int
    fold: NotRequired[int]
    status: Status
    identity: NotRequired[TrialIdentity]
    config_hash: NotRequired[str]
    provenance: NotRequired[Provenance]
    started: NotRequired[str]
    metrics: NotRequired[dict[str, float]]
    higher_is_better: NotRequired[dict[str, bool]]
    timings: NotRequired[Timings]
    counts: NotRequired[Counts]
    n_parameters: NotRequired[int]
    family: NotRequired[str]
    families: NotRequired[list[str]]
    memory: NotRequired[Memory]
    fit_info: NotRequired[dict[str, FitInfoValue]]
    files: NotRequired[Files]
    saved_model: NotRequired[SavedModel]
    tuning: NotRequired[TuningRecord]
    stage: NotRequired[str]
    error: NotRequired[str]
    traceback: NotRequired[str]
    reason: NotRequired[str]
    attempt: NotRequired[int]
    retry_policy: NotRequired[RetryPolicyRecord]
    worker: NotRequired[Worker]
    log: NotRequired[str]


# Keys an "ok" record always has, beyond the ones every record has.
OK_KEYS = frozenset({"identity", "config_hash", "provenance", "started", "metrics",
                     "higher_is_better", "timings", "counts", "n_parameters", "family", "memory",
                     "fit_info"})
FAILED_KEYS = frozenset({"identity", "stage", "error", "traceback"})
# A trial the model cannot serve (e.g. "cannot serve cold items"): stored like a success, never
# retried, shown in the leaderboard as such.
UNSUPPORTED_KEYS = frozenset({"identity", "config_hash", "provenance", "started", "reason"})


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of a run's plan: ``dataset`` and ``model`` are display labels, ``key`` the hash of
    ``identity`` (everything that determines the numbers), ``stored`` True when the result store
    already holds it and the run will skip it; ``fold`` is set under ``protocol.folds``."""

    key: str
    dataset: str
    model: str
    seed: int
    stored: bool
    identity: TrialIdentity
    fold: int | None = None


# ---------------------------------------------------------------- building records (only here)


def base_record(trial: PlannedTrial) -> TrialRecord:
    """The keys every record of ``trial`` has; status "failed" until the trial says otherwise."""
    record: TrialRecord = {"key": trial.key, "dataset": trial.dataset, "model": trial.model,
                           "seed": trial.seed, "status": "failed", "identity": trial.identity}
    if trial.fold is not None:
        record["fold"] = trial.fold
    return record


# What a record of the same trial hands on to its failure (storing it failed): where it ran.
_KEPT_ON_FAILURE = ("provenance", "attempt", "retry_policy", "worker", "log")


def failed_record(trial: PlannedTrial, error: BaseException, stage: str,
                  keep_from: TrialRecord | None = None) -> TrialRecord:
    """``trial`` failed at ``stage`` with ``error``; with ``keep_from`` (the record that could not
    be stored) its provenance and attempt details are kept."""
    record: TrialRecord = {**base_record(trial), "status": "failed", "stage": stage,
                           "error": f"{type(error).__name__}: {error}",
                           "traceback": "".join(traceback.format_exception(error, limit=8))}
    for key in _KEPT_ON_FAILURE:
        if keep_from is not None and key in keep_from:
            record[key] = keep_from[key]  # type: ignore[literal-required]
    return record


def died_record(trial: PlannedTrial, last: dict[str, Any], policy: RetryPolicyRecord
                ) -> TrialRecord:
    """The trial's process died in every attempt (``last``: the last claim's holder): stored as
    failed, naming the last one."""
    return {**base_record(trial), "status": "failed", "stage": "worker died",
            "error": f"WorkerDied: the process running {trial.dataset} / {trial.model} / seed "
                     f"{trial.seed} died in each of {last.get('attempt', '?')} attempts (last: "
                     f"host {last.get('host')} pid {last.get('pid')}, claimed "
                     f"{last.get('claimed')}): killed (out of memory?) or crashed in native code; "
                     "give its workers more memory, run fewer at once, or use --executor serial",
            "traceback": "", "attempt": int(last.get("attempt", 0)), "retry_policy": policy,
            "worker": {"host": last.get("host", "?"), "pid": last.get("pid", -1)}}


def missing_record(trial: PlannedTrial) -> TrialRecord:
    """A planned trial the store holds no record of (a run stopped before it)."""
    return {"key": trial.key, "dataset": trial.dataset, "model": trial.model,
            "seed": trial.seed, "status": "missing"}


# ---------------------------------------------------------------- schema checks


def key_paths(td: type = TrialRecord, prefix: str = "") -> dict[str, bool]:
    """Every key of a TypedDict schema, nested ones as dotted paths -> whether it is required."""
    out: dict[str, bool] = {}
    hints = typing.get_type_hints(td)
    for name, tp in hints.items():
        path = prefix + name
        out[path] = name in td.__required_keys__
        if _is_typeddict(tp):
            out.update(key_paths(tp, path + "."))
    return out


def schema_problems(record: Any, td: type = TrialRecord, where: str = "record") -> list[str]:
    """What is wrong with ``record`` against the schema ``td`` (empty: it conforms).

    Checks missing required keys, keys the schema does not know, and the type of every value;
    an "ok" record must also have every key of :data:`OK_KEYS`, a failed one :data:`FAILED_KEYS`.
    """
    if not isinstance(record, dict):
        return [f"{where}: expected a dict, got {type(record).__name__}"]
    problems: list[str] = []
    hints = typing.get_type_hints(td)
    for name in sorted(td.__required_keys__ - set(record)):
        problems.append(f"{where}.{name}: missing")
    for name, value in record.items():
        if name not in hints:
            problems.append(f"{where}.{name}: not in the schema ({td.__name__})")
        else:
            problems += _value_problems(value, hints[name], f"{where}.{name}")
    if td is TrialRecord:
        needed = {"ok": OK_KEYS, "failed": FAILED_KEYS,
                  "unsupported": UNSUPPORTED_KEYS}.get(record.get("status"), frozenset())
        problems += [f"{where}.{name}: missing (status {record['status']!r})"
                     for name in sorted(needed - set(record))]
    return problems


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _value_problems(value: Any, tp: Any, where: str) -> list[str]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return []
    if _is_typeddict(tp):
        return schema_problems(value, tp, where)
    if origin in (typing.Union, types.UnionType):
        if any(not _value_problems(value, a, where) for a in args):
            return []
        return [f"{where}: {value!r} is none of {tp}"]
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected a dict, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in
                _value_problems(k, args[0], f"{where}[key]") + _value_problems(v, args[1], f"{where}[{k!r}]")]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in _value_problems(v, args[0], f"{where}[{i}]")]
    if tp is type(None):
        return [] if value is None else [f"{where}: expected null, got {value!r}"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}"]
