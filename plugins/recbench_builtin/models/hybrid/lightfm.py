"""``lightfm``: the hybrid model of Kula 2015 ("Metadata embeddings for user and item cold-start
recommendations"), on recbench's shared training loop.

A user's representation is the sum of the embeddings of their features, an item's likewise:

    q_i = F_i @ E_item (+ e_i, the item's identity embedding)      b_i = F_i @ c_item (+ c_i)
    p_u = G_u @ E_user (+ e_u, the user's identity embedding)
    score(u, i) = p_u . q_i + b_i

``F`` are the item features of :mod:`..content.features` (categories, robust-scaled numbers,
TF-IDF text; rows L2-normalised), ``G`` the user features encoded by the same rules (country,
age, occupation, when the dataset has them). Identity features are switchable
(``item_identity``, ``user_identity``): with them the model is matrix factorisation plus
metadata, without item identities it is a pure metadata model. Item identity embeddings start at
zero and an item without training interactions never gets a gradient, so a cold item is scored
from its features alone (its identity stays exactly zero).

Losses (``loss``): ``bpr``, ``-log sigmoid(s_ui - s_uj)`` with one sampled negative; ``warp``, a
WARP-style loss as in LightFM: of ``warp_negatives`` sampled negatives, the violators are those
with ``s_uj > s_ui - 1``; the hinge ``1 - s_ui + s_uj`` on the highest-scoring violator is
weighted by ``log(1 + (n_items - 1) * violators / warp_negatives)``, the sampled estimate of
``log(1 + rank)`` of the positive (LightFM samples until the first violator instead, a
sequential loop that does not batch). ``reg`` is an L2 penalty on the representations in the
batch (LightFM's ``item_alpha``/``user_alpha`` act on the feature embeddings). Adam; early stopping
on validation NDCG@``valid_k`` when the split has a validation part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from recbench.api import (
    DataclassState,
    ConfigError,
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

# A sampled negative that is a known positive is redrawn once (WARP tolerates a rare one).
ROUNDS = 1
from ..content.features import encode_items, encode_users, without_cold_identities
from .options import HybridTrainingOptions


@dataclass(frozen=True)
class LightFMConfig(HybridTrainingOptions):
    factors: int = field(default=64, metadata={"range": (1, None)})
    loss: Literal["bpr", "warp"] = "warp"
    warp_negatives: int = field(default=16, metadata={
        "range": (1, None), "help": "negatives sampled per positive for the WARP-style loss"})
    item_identity: bool = field(default=True, metadata={
        "help": "an identity embedding per item besides its features"})
    user_identity: bool = field(default=True, metadata={
        "help": "an identity embedding per user besides their features"})
    use_user_features: bool = True
    reg: float = field(default=1e-4, metadata={"range": (0.0, None)})
    init_std: float = field(default=0.05, metadata={"range": (0.0, None)})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("factors", "warp_negatives"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(self.reg >= 0 and self.init_std > 0,
              f"reg must be >= 0 and init_std > 0, got {self.reg} and {self.init_std}")
        check(self.loss in ("bpr", "warp"), f"loss must be 'bpr' or 'warp', got {self.loss!r}")


def _item_table(params, features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Every item's representation and bias: one ``[n_items, d] @ [d, k]`` product per step,
    cheaper than gathering feature rows for each positive and each sampled negative."""
    q = features @ params["item_feat"] + params["item_id"]
    b = features @ params["item_feat_bias"] + params["item_id_bias"]
    return q, b


def _user_repr(params, features: jax.Array, users: jax.Array) -> jax.Array:
    return features[users] @ params["user_feat"] + params["user_id"][users]


def _loss(params, batch, key, aux, *, loss: str, n_negatives: int):
    u, i = batch["user"], batch["item"]
    n_items = params["item_id"].shape[0]
    p = _user_repr(params, aux["user_features"], u)
    q_all, b_all = _item_table(params, aux["item_features"])
    q, b = q_all[i], b_all[i]
    pos = (p * q).sum(-1) + b
    shape = () if loss == "bpr" else (n_negatives,)
    j = sample_negatives(key, u, n_items, aux["positives"], shape=shape, rounds=ROUNDS)
    qj, bj = q_all[j], b_all[j]
    penalty = (p * p).sum(-1) + (q * q).sum(-1)
    if loss == "bpr":
        neg = (p * qj).sum(-1) + bj
        per_row = jax.nn.softplus(neg - pos)
        penalty = penalty + (qj * qj).sum(-1)
    else:
        neg = jnp.einsum("bk,bnk->bn", p, qj) + bj
        violating = neg > pos[:, None] - 1.0
        n_violating = violating.sum(-1).astype(jnp.float32)
        hardest = jnp.max(jnp.where(violating, neg, -jnp.inf), axis=-1)
        hardest = jnp.where(n_violating > 0, hardest, pos)  # finite everywhere, for the gradient
        weight = jax.lax.stop_gradient(jnp.log1p((n_items - 1) * n_violating / n_negatives))
        per_row = jnp.where(n_violating > 0, weight * jax.nn.relu(1.0 - pos + hardest), 0.0)
    return masked_mean(per_row + aux["reg"] * penalty, batch["mask"])


@lru_cache(maxsize=None)
def _loss_for(loss: str, n_negatives: int):
    """One loss object per (loss, negatives): a static argument of the compiled epoch."""
    return partial(_loss, loss=loss, n_negatives=n_negatives)


@jax.jit
def _representations(params, item_features: jax.Array, user_features: jax.Array):
    q, b = _item_table(params, item_features)
    p = _user_repr(params, user_features, jnp.arange(params["user_id"].shape[0]))
    return p, q, b


@jax.jit
def _scores(users_repr: jax.Array, items_repr: jax.Array, bias: jax.Array,
            users: jax.Array) -> jax.Array:
    return users_repr[users] @ items_repr.T + bias[None, :]


@dataclass(frozen=True)
class LightFMFitted(DataclassState):
    user_repr: jax.Array  # [n_users, factors]
    item_repr: jax.Array  # [n_items, factors]
    item_bias: jax.Array  # [n_items]
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _scores(self.user_repr, self.item_repr, self.item_bias, batch.users)


def _fitted(params, item_features, user_features, info=None) -> LightFMFitted:
    p, q, b = _representations(params, item_features, user_features)
    return LightFMFitted(p, q, b, dict(info or {}))


@dataclass(frozen=True)
class LightFM:
    config: LightFMConfig
    context: ModelContext

    restore = restores(LightFMFitted)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> LightFMFitted:
        cfg, ctx = self.config, self.context
        items = encode_items(ctx, cfg, "lightfm")
        users = encode_users(ctx, cfg, "lightfm") if cfg.use_user_features else None
        if users is None and not cfg.user_identity:
            raise ConfigError("model 'lightfm': user_identity = false needs user features, and "
                              "the dataset has none (or use_user_features = false); every user "
                              "would get the same representation")
        item_features = jnp.asarray(items.matrix.toarray(), jnp.float32)
        user_features = jnp.asarray(users.matrix.toarray() if users is not None
                                    else np.zeros((ctx.n_users, 0)), jnp.float32)
        k = cfg.factors
        keys = jax.random.split(key, 4)
        normal = lambda kk, shape: cfg.init_std * jax.random.normal(kk, shape, jnp.float32)  # noqa: E731
        user_id = normal(keys[1], (ctx.n_users, k))
        params = {
            "item_feat": normal(keys[0], (item_features.shape[1], k)),
            "item_feat_bias": jnp.zeros(item_features.shape[1], jnp.float32),
            # Zero and never gathered for an item without interactions: cold items stay pure
            # metadata. Without identities the zero table gets no gradient at all.
            "item_id": jnp.zeros((ctx.n_items, k), jnp.float32),
            "item_id_bias": jnp.zeros(ctx.n_items, jnp.float32),
            "user_feat": normal(keys[2], (user_features.shape[1], k)),
            "user_id": user_id if cfg.user_identity else jnp.zeros_like(user_id),
        }
        # Identities switched off are frozen at zero by masking their updates.
        frozen = {name: name in ("item_id", "item_id_bias") and not cfg.item_identity
                  or name == "user_id" and not cfg.user_identity for name in params}
        optimizer = cached_optimizer(_masked_adam, learning_rate=cfg.learning_rate,
                                     frozen=tuple(sorted(n for n, f in frozen.items() if f)))
        validate = None
        if valid is not None and len(valid):
            validate = ranking_validator(lambda p: _fitted(p, item_features, user_features),
                                         train, valid, metric=NDCG, k=cfg.valid_k,
                                         candidates=ctx.candidates)
        aux = {"positives": csr_positives(train), "reg": jnp.float32(cfg.reg),
               "item_features": item_features, "user_features": user_features}
        result = fit_loop(params, _loss_for(cfg.loss, cfg.warp_negatives), optimizer,
                          data={"user": train.user, "item": train.item}, aux=aux, key=keys[3],
                          epochs=cfg.epochs, batch_size=cfg.batch_size, validate=validate,
                          eval_every=cfg.eval_every, patience=cfg.patience)
        info = {**result.info, "item_features": int(item_features.shape[1]),
                "user_features": int(user_features.shape[1])}
        params = without_cold_identities(result.params, train, ("item_id", "item_id_bias"))
        return _fitted(params, item_features, user_features, info)


def _masked_adam(learning_rate: float, frozen: tuple[str, ...]) -> optax.GradientTransformation:
    """Adam on every table except the ``frozen`` ones (switched-off identity features)."""
    labels = lambda params: {n: "frozen" if n in frozen else "train" for n in params}  # noqa: E731
    return optax.multi_transform({"train": optax.adam(learning_rate),
                                  "frozen": optax.set_to_zero()}, labels)


SPECS: list[ModelSpec] = [
    ModelSpec("lightfm", "hybrid", frozenset({"ranking"}), lambda cfg, ctx: LightFM(cfg, ctx),
              LightFMConfig,
              "LightFM (Kula 2015): users and items as sums of feature embeddings (identity "
              "features switchable), WARP-style or BPR loss; scores cold items",
              requires=frozenset({"item_features"}), cold_items=True),
]
