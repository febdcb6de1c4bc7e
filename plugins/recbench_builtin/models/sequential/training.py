"""What every sequential model shares: the config keys, training, early stopping, scoring.

A model is a Flax (linen) module built by its config's ``network(n_users, n_items)``; called as
``net.apply({"params": params}, inputs [B, L], users [B], deterministic=...)`` it returns
``(hidden [B, L, d], table [n_items, d], bias [n_items] | None)``: the output at every position
and the item embeddings it is scored against.

Training (:func:`fit_sequential`) is :func:`recbench.api.fit_loop` over the rows of
:func:`.histories.training_rows` (one per user sequence or window): one jitted epoch per shape
class, the next-item loss of :mod:`.losses` at every position, Adam. Dropout keys are derived
explicitly: each step's key (fit_loop folds in the epoch and splits per step) is split into a
dropout key, handed to Flax as its ``"dropout"`` stream (which folds in each layer's path), and a
negative-sampling key. Early stopping: NDCG@``valid_k`` on the validation part, full ranking with
the training items masked, evaluated every ``eval_every`` epochs; the best parameters are restored
(fit_loop), and a NaN or infinite loss fails the fit naming the epoch. ``fit_info`` reports the
best validation value as ``valid_best``, the number settings are compared on.

The fitted model keeps its trained state as one pytree of plain arrays, ``params``, plus its config
and the id-space sizes; ``score`` is built from those only: the last ``max_len`` items of
``UserBatch.history`` (:func:`.histories.last_window`) through the network, the last position's
output against every item. The network compiles once per batch size (the window, a small
program, once per history width). With the protocol's
``history = "train+valid"`` the evaluator hands it the full prefix (training and validation items),
which is what a leave-last-out test of a sequential model needs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import optax

from recbench.api import (
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    cached_optimizer,
    check,
    csr_positives,
    fit_loop,
    ranking_validator,
)

from ...metrics import NDCG
from .histories import WINDOWS, last_window, training_rows
from .losses import LOSSES, next_item_loss


@dataclass(frozen=True)
class SequentialConfig:
    """Keys every sequential model has. ``max_len``: items of history the model reads (the most
    recent); ``windows``: which training rows a user gives (``"last"``: the most recent
    ``max_len`` next-item pairs; ``"all"``: every pair, in rows of ``max_len``); ``loss``:
    ``"softmax"`` (full), ``"sampled"`` (``negatives`` uniform items shared by the batch) or
    ``"bce"`` (one negative per position); ``batch_size`` counts rows.

    Defaults chosen on ML-100K's validation NDCG@10 (``results/ml-100k-sequential-ablation``, one
    setting at a time): ``windows = "all"`` (SASRec 0.1068 -> 0.1175, GRU4Rec 0.1039 -> 0.1106:
    with ``"last"`` a user with 300 ratings trains on 50 of them) and ``patience = 10`` (with 5,
    SASRec stopped at epoch 30 on the noise of 943 validation users, its best came at 36). The
    full softmax stays the default: it is the published SASRec+/RecBole objective; ``"sampled"``
    costs about half as much per step on this CPU (``bench/bench_sequential.py``)."""

    dim: int = 64
    max_len: int = 50
    dropout: float = 0.2
    loss: str = "softmax"
    negatives: int = 256
    windows: str = "all"
    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 0.001
    eval_every: int = 1
    patience: int = 10
    valid_k: int = 10
    # Added after the reference tables: left out of the model identity at its default.
    compute_dtype: str = field(default="float32", metadata={"omit_default": True, "help": (
        '"bfloat16": the network computes in bfloat16 (the parameters stay float32 and are cast '
        "at each step; logits and losses accumulate in float32), for GPUs and TPUs, whose "
        "matrix units run bfloat16 several times faster; on a CPU it is emulated and slower")})

    def __post_init__(self) -> None:
        for name in ("dim", "max_len", "negatives", "epochs", "batch_size", "eval_every",
                     "patience", "valid_k"):
            v = getattr(self, name)
            check(v >= 1, f"{name} must be >= 1 (valid range: [1, inf)), got {v}")
        check(0.0 <= self.dropout < 1.0,
              f"dropout must be in [0, 1) (valid range: [0, 1)), got {self.dropout}")
        check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check(self.windows in WINDOWS,
              f"windows must be one of {', '.join(WINDOWS)}, got {self.windows!r}")
        check(self.learning_rate > 0,
              f"learning_rate must be > 0 (valid range: (0, inf)), got {self.learning_rate}")
        check(self.compute_dtype in COMPUTE_DTYPES,
              f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {self.compute_dtype!r}")

    def network(self, n_users: int, n_items: int) -> Any:
        raise NotImplementedError


COMPUTE_DTYPES = ("float32", "bfloat16")


def _apply(net: Any, params: Any, inputs: jax.Array, users: jax.Array, **kwargs: Any) -> Any:
    """``net.apply`` with the parameters in ``net.cfg.compute_dtype``: float32 as trained, or
    cast to bfloat16 (the cast's gradient carries the update back to the float32 parameters).
    In bfloat16 under standard dtype promotion: Flax's LayerNorm takes its statistics in
    float32, a promotion that strict rules refuse."""
    if net.cfg.compute_dtype == "float32":
        return net.apply({"params": params}, inputs, users, **kwargs)
    cast = jax.tree.map(lambda p: p.astype(jnp.bfloat16)
                        if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
    with jax.numpy_dtype_promotion("standard"):
        return net.apply({"params": cast}, inputs, users, **kwargs)


# Two programs: the window (one per history width, tiny) and the network (one per batch size),
# so validation and test batches of different widths share the network's compiled program.
_window = jax.jit(last_window, static_argnums=(2, 3))


@functools.partial(jax.jit, static_argnums=0)
def _score(net: Any, params: Any, users: jax.Array, window: jax.Array) -> jax.Array:
    hidden, table, bias = _apply(net, params, window, users, deterministic=True)
    scores = jnp.matmul(hidden[:, -1], table.T, preferred_element_type=jnp.float32)
    if bias is not None:
        scores = scores + bias.astype(scores.dtype)
    return scores.astype(jnp.float32)


@functools.partial(jax.jit, static_argnums=0)
def _init_params(net: Any, key: jax.Array, inputs: jax.Array, users: jax.Array) -> Any:
    return net.init(key, inputs, users, deterministic=True)["params"]


# The initialisation runs once per fit, so it is compiled without XLA's backend optimisations:
# they were most of its compile time (the initialisers' truncated normals and QR factorisations;
# Caser's at test size: 8.9 s of CPU -> 2.2 s) and buy nothing for a program run once.
_INIT_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.lru_cache(maxsize=64)
def _init_program(net: Any, shapes: tuple[jax.ShapeDtypeStruct, ...]) -> Any:
    return _init_params.lower(net, *shapes).compile(_INIT_OPTIONS)


def _init(net: Any, key: jax.Array, inputs: jax.Array, users: jax.Array) -> Any:
    """``net``'s initial parameters (compiled once per network and input shape)."""
    args = (key, inputs, users)
    return _init_program(net, tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args))(*args)


@dataclass(frozen=True)
class SequentialFitted:
    """A trained sequential model: ``config``, the id-space sizes and ``params`` (plain arrays)."""

    config: SequentialConfig
    n_users: int
    n_items: int
    params: Any
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        # The config is the model's own (restore gets it from the factory); the rest is data.
        return {"n_users": self.n_users, "n_items": self.n_items, "params": self.params,
                "fit_info": self.fit_info}

    def score(self, batch: UserBatch) -> jax.Array:
        net = self.config.network(self.n_users, self.n_items)
        window = _window(batch.history, batch.lengths, self.config.max_len, self.n_items)
        return _score(net, self.params, batch.users, window)


@dataclass(frozen=True)
class _NextItemLoss:
    """The training loss as a value: equal settings give an equal (hashable) loss, so a refit
    reuses the compiled epoch."""

    net: Any
    loss: str
    negatives: int

    def __call__(self, params: Any, batch: dict[str, jax.Array], key: jax.Array, aux: Any
                 ) -> jax.Array:
        k_drop, k_neg = jax.random.split(key)
        hidden, table, bias = _apply(self.net, params, batch["inputs"], batch["user"],
                                     deterministic=False, rngs={"dropout": k_drop})
        return next_item_loss(self.loss, hidden, batch["targets"], table, bias, k_neg,
                              row_mask=batch["mask"], users=batch["user"],
                              negatives=self.negatives, positives=aux)


def fit_sequential(cfg: SequentialConfig, ctx: ModelContext, train: Interactions,
                   valid: Interactions | None, key: jax.Array) -> SequentialFitted:
    """Train ``cfg.network`` on ``train`` (see the module doc)."""
    rows = training_rows(train, cfg.max_len, cfg.windows)
    n_users, n_items = train.n_users, train.n_items
    net = cfg.network(n_users, n_items)
    k_init, k_fit = jax.random.split(key)
    params = _init(net, k_init, jnp.asarray(rows["inputs"][:1]), jnp.asarray(rows["user"][:1]))
    validate = None
    if valid is not None and len(valid):
        validate = ranking_validator(lambda p: SequentialFitted(cfg, n_users, n_items, p),
                                     train, valid, metric=NDCG, k=cfg.valid_k)
    result = fit_loop(params, _NextItemLoss(net, cfg.loss, cfg.negatives),
                      cached_optimizer(optax.adam, learning_rate=cfg.learning_rate),
                      data=rows, aux=csr_positives(train) if cfg.loss == "bce" else None,
                      key=k_fit, epochs=cfg.epochs, batch_size=cfg.batch_size,
                      validate=validate, eval_every=cfg.eval_every, patience=cfg.patience)
    info = {**result.info, "training_rows": len(rows["user"]), "loss": cfg.loss}
    if result.validation:  # what settings are chosen on (the test metric never is)
        info["valid_best"] = max(value for _, value in result.validation)
    return SequentialFitted(cfg, n_users, n_items, result.params, info)


@dataclass(frozen=True)
class SequentialModel:
    cfg: SequentialConfig
    ctx: ModelContext

    def restore(self, state: dict[str, Any]) -> SequentialFitted:
        """The fitted model saved as ``state`` (see ``recbench run --save-models``)."""
        return SequentialFitted(self.cfg, int(state["n_users"]), int(state["n_items"]),
                                state["params"], dict(state.get("fit_info", {})))

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> SequentialFitted:
        return fit_sequential(self.cfg, self.ctx, train, valid, key)


def sequential_spec(name: str, family: str, config: type, description: str) -> ModelSpec:
    """A sequential model's registration: ranking only, needs timestamps, also in family
    ``sequential``."""
    return ModelSpec(name, family, frozenset({"ranking"}), SequentialModel, config, description,
                     requires=frozenset({"timestamps"}), families=("sequential",))
