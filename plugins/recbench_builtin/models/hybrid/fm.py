"""``fm`` and ``deepfm``: a factorisation machine (Rendle 2010) over a user field, an item field and
the item's attribute field, and DeepFM (Guo et al. 2017: the FM plus an MLP over the same field
embeddings), for ranking, binary interaction prediction and rating prediction.

Family ``hybrid``: the id fields carry the collaborative signal and the attribute field (the item
features of :mod:`..content.features`: categories, robust-scaled numbers, TF-IDF text, a
weighted multi-hot field) carries content, in one model; a cold item is scored through its
attribute field alone (its id embedding and weight start at zero and get no gradient).

FM, for the input x (one-hot user, one-hot item, attribute values f_i) with embeddings v_j:

    y(u, i) = w0 + w_u + w_i + f_i . w_attr + 1/2 sum_k [(sum_j v_jk x_j)^2 - sum_j v_jk^2 x_j^2]

computed in O(k n) (n nonzero inputs) by the sum-of-squares identity. With the user side
``a_u = v_u`` and the item side ``c_i = v_i + f_i V_attr`` the pairwise term is
``a_u . c_i + 1/2 (|c_i|^2 - |v_i|^2 - f_i^2 . |V_attr|^2_rows)``, so ranking every item for a
batch of users is one matrix product plus a per-item term. The attribute rows are sparse (a few
genres and words among ~1,000 columns) and are kept as padded sparse rows: a step touches
O(w k) values per item of the batch, w the longest row. DeepFM adds
``MLP([v_u, v_i, f_i V_attr])`` (Flax ``linen``, ReLU hidden layers) to the logit; its full
ranking evaluates the MLP for every (user, item) pair, in item blocks, with the first layer
split into a user part and an item part computed once each.

Tasks: ``ranking``: BPR with one sampled negative; ``binary``: log loss on the training pairs,
labelled ``rating >= binary_threshold`` when the data has ratings (else 1), each with one sampled
negative labelled 0 (as NeuMF here), ``predict`` = ``sigmoid(y)``; ``rating``: squared error,
``predict`` = ``y`` clipped to the training rating range. L2 ``reg`` on the embeddings in the
batch; Adam; early stopping on validation NDCG@``valid_k`` (ranking, binary) or RMSE (rating).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from recbench.api import (
    DataclassState,
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    cached_optimizer,
    check,
    csr_positives,
    fit_loop,
    masked_mean,
    ranking_validator,
    sample_negatives,
    restores,
)

from ...metrics import NDCG
from ..content.features import encode_items, without_cold_identities
from ..content.knn import padded_rows
from .options import HybridTrainingOptions

_BLOCK = 256  # items per block of DeepFM's full ranking


@dataclass(frozen=True)
class FMConfig(HybridTrainingOptions):
    factors: int = field(default=32, metadata={"range": (1, None)})
    hidden: tuple[int, ...] = field(default=(), metadata={
        "help": "MLP hidden layer sizes; empty = FM, non-empty = DeepFM"})
    reg: float = field(default=1e-4, metadata={"range": (0.0, None)})
    init_std: float = field(default=0.05, metadata={"range": (0.0, None)})

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.factors >= 1, f"factors must be >= 1, got {self.factors}")
        check(all(h >= 1 for h in self.hidden), f"hidden sizes must be >= 1, got {self.hidden}")
        check(self.init_std > 0 and self.reg >= 0, "init_std must be > 0 and reg >= 0")


@dataclass(frozen=True)
class DeepFMConfig(FMConfig):
    hidden: tuple[int, ...] = field(default=(64, 32), metadata={
        "help": "MLP hidden layer sizes (the deep part)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.hidden) >= 1, "deepfm needs at least one hidden layer; use fm without")


class _MLP(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Named as Flax would name them: _scores applies the layers after the first by name.
        for n, h in enumerate(self.hidden):
            x = nn.relu(nn.Dense(h, name=f"Dense_{n}")(x))
        return nn.Dense(1, name=f"Dense_{len(self.hidden)}")(x)[..., 0]


@lru_cache(maxsize=None)
def _mlp(hidden: tuple[int, ...]) -> _MLP:
    return _MLP(hidden)  # one module object per shape: a static part of the compiled loss


def _item_terms(params, features: tuple[jax.Array, jax.Array], items: jax.Array):
    """For ``items``: the attribute embedding f_i V_attr, the item side c_i, the item's
    first-order plus within-item pairwise term, and its id embedding. ``features`` are the
    items' padded sparse attribute rows (index, value ``[n_items, w]``), so the cost is
    O(w k) per item, not O(n_features k)."""
    index, value = features[0][items], features[1][items]
    attr = (params["v_attr"][index] * value[..., None]).sum(-2)
    v_i = params["v_item"][items]
    c = v_i + attr
    self_sq = (v_i ** 2).sum(-1) + (value ** 2 * (params["v_attr"] ** 2).sum(-1)[index]).sum(-1)
    own = (params["w_item"][items] + (value * params["w_attr"][index]).sum(-1)
           + 0.5 * ((c * c).sum(-1) - self_sq))
    return attr, c, own, v_i


def _pair_logits(params, hidden: tuple[int, ...], users: jax.Array, items: jax.Array,
                 features: tuple[jax.Array, jax.Array]) -> jax.Array:
    """y(u, i) for aligned ``users`` and ``items`` of any (equal) shape. The item terms are
    computed for every item, then gathered: n_items x w sparse products per step, and their
    gradient one dense scatter of the batch's rows, instead of a sparse gradient per batch
    position (XLA's CPU scatter-add made that 30x more expensive)."""
    every = _item_terms(params, features, jnp.arange(params["v_item"].shape[0]))
    attr, c, own, v_i = (t[items] for t in every)
    v_u = params["v_user"][users]
    y = params["w0"] + params["w_user"][users] + own + (v_u * c).sum(-1)
    if hidden:
        x = jnp.concatenate([v_u, v_i, attr], axis=-1)
        y = y + _mlp(hidden).apply({"params": params["mlp"]}, x)
    return y


def _loss(params, batch, key, aux, *, task: str, hidden: tuple[int, ...]):
    u, i, mask = batch["user"], batch["item"], batch["mask"]
    features = aux["features"]
    penalty = aux["reg"] * ((params["v_user"][u] ** 2).sum(-1) + (params["v_item"][i] ** 2).sum(-1))
    if task == "rating":
        y = _pair_logits(params, hidden, u, i, features)
        return masked_mean((y - batch["target"]) ** 2 + penalty, mask)
    j = sample_negatives(key, u, params["v_item"].shape[0], aux["positives"])
    pair = _pair_logits(params, hidden, jnp.stack([u, u]), jnp.stack([i, j]), features)
    if task == "ranking":
        per_row = jax.nn.softplus(pair[1] - pair[0])
    else:
        per_row = (optax.sigmoid_binary_cross_entropy(pair[0], batch["target"])
                   + optax.sigmoid_binary_cross_entropy(pair[1], jnp.zeros_like(pair[1]))) / 2
    return masked_mean(per_row + penalty, mask)


@lru_cache(maxsize=None)
def _loss_for(task: str, hidden: tuple[int, ...]):
    return partial(_loss, task=task, hidden=hidden)


@partial(jax.jit, static_argnames=("hidden",))
def _scores(params, features: tuple[jax.Array, jax.Array], users: jax.Array, *,
            hidden: tuple[int, ...]) -> jax.Array:
    attr, c, own, _ = _item_terms(params, features, jnp.arange(params["v_item"].shape[0]))
    v_u = params["v_user"][users]
    y = params["w0"] + params["w_user"][users][:, None] + own[None, :] + v_u @ c.T
    if not hidden:
        return y
    # The MLP's input is [v_u, v_i, attr] (as in _pair_logits), so its first layer splits into a
    # user part and an item part, each computed once: a pair costs an addition there, not a
    # [3k x hidden] product (hidden (64, 32): 4x fewer multiply-adds per pair; ML-1M size,
    # bench/bench_content.py: the full-ranking evaluation from 2.75 to 1.11 s).
    k, first = v_u.shape[1], params["mlp"]["Dense_0"]
    user_part = v_u @ first["kernel"][:k] + first["bias"]
    item_part = jnp.concatenate([params["v_item"], attr], axis=1) @ first["kernel"][k:]
    n = c.shape[0]
    blocks = jnp.pad(item_part, ((0, -n % _BLOCK), (0, 0))).reshape(-1, _BLOCK, item_part.shape[1])

    def block(item_block: jax.Array) -> jax.Array:  # [B, _BLOCK]
        x = nn.relu(user_part[:, None, :] + item_block[None])
        for layer in range(1, len(hidden) + 1):  # the layers after the first, as _MLP has them
            dense = params["mlp"][f"Dense_{layer}"]
            x = x @ dense["kernel"] + dense["bias"]
            x = nn.relu(x) if layer < len(hidden) else x[..., 0]
        return x

    deep = jax.lax.map(block, blocks)  # [n_blocks, B, _BLOCK]
    return y + jnp.moveaxis(deep, 0, 1).reshape(v_u.shape[0], -1)[:, :n]


@partial(jax.jit, static_argnames=("hidden", "task"))
def _predict(params, features, users, items, lo, hi, *, hidden, task):
    y = _pair_logits(params, hidden, users, items, features)
    return jax.nn.sigmoid(y) if task == "binary" else jnp.clip(y, lo, hi)


@dataclass(frozen=True)
class FMFitted(DataclassState):
    params: Any
    features: tuple[jax.Array, jax.Array]  # padded sparse attribute rows (index, value)
    hidden: tuple[int, ...]
    task: str
    lo: jax.Array
    hi: jax.Array
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _scores(self.params, self.features, batch.users, hidden=self.hidden)

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return _predict(self.params, self.features, users, items, self.lo, self.hi,
                        hidden=self.hidden, task=self.task)


@dataclass(frozen=True)
class FM:
    config: FMConfig
    context: ModelContext
    name: str

    restore = restores(FMFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> FMFitted:
        cfg, ctx = self.config, self.context
        matrix = encode_items(ctx, cfg, self.name).matrix
        index, value = padded_rows(matrix)
        features = (jnp.asarray(index), jnp.asarray(value))
        k, d = cfg.factors, matrix.shape[1]
        keys = jax.random.split(key, 4)
        normal = lambda kk, shape: cfg.init_std * jax.random.normal(kk, shape, jnp.float32)  # noqa: E731
        params: dict[str, Any] = {
            "w0": jnp.zeros((), jnp.float32), "w_user": jnp.zeros(ctx.n_users, jnp.float32),
            "w_item": jnp.zeros(ctx.n_items, jnp.float32), "w_attr": jnp.zeros(d, jnp.float32),
            "v_user": normal(keys[0], (ctx.n_users, k)),
            # Zero: an item without interactions is scored through its attributes alone.
            "v_item": jnp.zeros((ctx.n_items, k), jnp.float32),
            "v_attr": normal(keys[1], (d, k)),
        }
        if cfg.hidden:
            params["mlp"] = _mlp(cfg.hidden).init(keys[2], jnp.zeros((1, 3 * k)))["params"]
        task = ctx.task
        ratings = train.rating if train.rating is not None else np.ones(len(train), np.float32)
        if task == "rating":
            target = ratings
            params["w0"] = jnp.float32(ratings.mean()) if len(train) else params["w0"]
        elif task == "binary" and train.rating is not None:
            target = (train.rating >= ctx.binary_threshold).astype(np.float32)
        else:
            target = np.ones(len(train), np.float32)
        lo = jnp.float32(ratings.min() if len(train) else 0.0)
        hi = jnp.float32(ratings.max() if len(train) else 1.0)
        make = lambda p: FMFitted(p, features, cfg.hidden, task, lo, hi)  # noqa: E731
        validate, higher = None, True
        if valid is not None and len(valid):
            if task == "rating" and valid.rating is not None:
                vu, vi, vr = (jnp.asarray(a) for a in (valid.user, valid.item, valid.rating))
                validate, higher = (lambda p: float(jnp.sqrt(jnp.mean(
                    (make(p).predict(vu, vi) - vr) ** 2)))), False
            elif task != "rating":
                validate = ranking_validator(make, train, valid, metric=NDCG, k=cfg.valid_k,
                                             candidates=ctx.candidates)
        aux = {"positives": csr_positives(train), "reg": jnp.float32(cfg.reg),
               "features": features}
        result = fit_loop(params, _loss_for(task, cfg.hidden),
                          cached_optimizer(optax.adam, learning_rate=cfg.learning_rate),
                          data={"user": train.user, "item": train.item,
                                "target": np.asarray(target, np.float32)},
                          aux=aux, key=keys[3], epochs=cfg.epochs, batch_size=cfg.batch_size,
                          validate=validate, eval_every=cfg.eval_every, patience=cfg.patience,
                          higher_is_better=higher)
        fitted = make(without_cold_identities(result.params, train, ("w_item", "v_item")))
        return FMFitted(fitted.params, features, cfg.hidden, task, lo, hi,
                        {**result.info, "item_features": int(d)})


_TASKS = frozenset({"ranking", "binary", "rating"})

SPECS: list[ModelSpec] = [
    ModelSpec("fm", "hybrid", _TASKS, lambda cfg, ctx: FM(cfg, ctx, "fm"), FMConfig,
              "factorisation machine over user, item and item-attribute fields (O(kn) pairwise "
              "term); BPR, log loss or squared error by task; scores cold items",
              requires=frozenset({"item_features"}), cold_items=True),
    ModelSpec("deepfm", "hybrid", _TASKS, lambda cfg, ctx: FM(cfg, ctx, "deepfm"), DeepFMConfig,
              "DeepFM: the factorisation machine plus an MLP (Flax) over the same field "
              "embeddings; scores cold items", requires=frozenset({"item_features"}),
              families=("neural-cf",), cold_items=True),
]
