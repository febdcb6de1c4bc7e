"""``neumf``: Neural Matrix Factorisation (He et al., WWW 2017), a Flax NNX module.

Family ``neural-cf``: NeuMF is a latent-factor model whose interaction function is learned (GMF +
MLP); it gets its own family so leaderboards compare it against the linear ``latent-factor`` models
(``bpr``, ``biased-mf``) rather than among them.

Architecture (RecBole's defaults; see :class:`NeuMFConfig`): GMF branch ``p_u * q_i`` (``gmf_factors``); MLP branch over
``[p'_u, q'_i]`` (``mlp_factors`` each) through ``layers`` with ReLU and dropout; one linear output
over both branches gives the logit. Embeddings start at N(0, ``init_std``), dense layers with
Flax's defaults.

Training (:func:`recbench.train.fit_loop`): binary cross-entropy on every training interaction
(label 1) and ``negatives`` items per interaction drawn uniformly among the items the user has not
interacted with (label 0), drawn on the device each step; Adam; the model is split with
``nnx.split`` and the loop works on the parameter state (``nnx.merge`` inside the compiled step).
Task ``binary`` with ratings: a training interaction is a positive when its rating is
>= the protocol's ``binary_threshold`` (``ModelContext.binary_threshold``), the same rule that labels
the test pairs, and an explicit negative otherwise; ``predict`` returns ``sigmoid(logit)``. Early stopping on validation NDCG@``valid_k``
(full ranking) in every task.

Full ranking without a ``[B, n_items, 2d]`` tensor: the first MLP layer is split into its user and
item halves (``W [p; q] = W_u p + W_i q``), each computed once, and the rest runs over blocks of
``item_block`` items (``lax.map``) so memory stays ``B x item_block x layers[0]``.

Users without training interactions keep their initial (near-zero) embeddings: their scores are
finite, close to the item-only part of the network (a popularity-like ranking learned from the
negatives). Items without training interactions are sampled as negatives and score low.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from recbench import Interactions, ModelContext, ModelSpec, UserBatch
from recbench.config import check
from recbench.train import csr_positives, fit_loop, ranking_validator, sample_negatives

from ..metrics import NDCG

ITEM_BLOCK = 512


@dataclass(frozen=True)
class NeuMFConfig:
    """NeuMF. Defaults follow RecBole (64 + 64 factors, MLP (128, 64), dropout 0.1, Adam 0.001,
    batch 2048, early stopping with patience 10) except 4 negatives per positive (He et al.'s
    setting), which scored best on the ML-100K validation splits (1 or 4 negatives, learning
    rates 0.001 / 0.002 / 0.003 compared)."""

    gmf_factors: int = 64
    mlp_factors: int = 64
    layers: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    negatives: int = 4
    negative_rounds: int = 3
    epochs: int = 300
    batch_size: int = 2048
    learning_rate: float = 0.001
    reg: float = 0.0
    init_std: float = 0.01
    eval_every: int = 1
    patience: int = 10
    valid_k: int = 10

    def __post_init__(self) -> None:
        for name in ("gmf_factors", "mlp_factors", "negatives", "epochs", "batch_size",
                     "eval_every", "patience", "valid_k"):
            v = getattr(self, name)
            check(v >= 1, f"{name} must be >= 1 (valid range: [1, inf)), got {v}")
        check(len(self.layers) >= 1 and all(h >= 1 for h in self.layers),
              f"layers must list at least one width, each >= 1, got {self.layers}")
        check(0.0 <= self.dropout < 1.0,
              f"dropout must be in [0, 1) (valid range: [0, 1)), got {self.dropout}")
        check(self.negative_rounds >= 0,
              f"negative_rounds must be >= 0 (valid range: [0, inf)), got {self.negative_rounds}")
        check(self.learning_rate > 0,
              f"learning_rate must be > 0 (valid range: (0, inf)), got {self.learning_rate}")
        check(self.reg >= 0, f"reg must be >= 0 (valid range: [0, inf)), got {self.reg}")
        check(self.init_std >= 0,
              f"init_std must be >= 0 (valid range: [0, inf)), got {self.init_std}")


class NeuMF(nnx.Module):
    def __init__(self, n_users: int, n_items: int, cfg: NeuMFConfig, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(cfg.init_std)
        self.user_gmf = nnx.Embed(n_users, cfg.gmf_factors, embedding_init=init, rngs=rngs)
        self.item_gmf = nnx.Embed(n_items, cfg.gmf_factors, embedding_init=init, rngs=rngs)
        self.user_mlp = nnx.Embed(n_users, cfg.mlp_factors, embedding_init=init, rngs=rngs)
        self.item_mlp = nnx.Embed(n_items, cfg.mlp_factors, embedding_init=init, rngs=rngs)
        dims = (2 * cfg.mlp_factors, *cfg.layers)
        self.mlp = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
        self.out = nnx.Linear(cfg.gmf_factors + dims[-1], 1, rngs=rngs)
        self.dropout = cfg.dropout

    def _drop(self, h: jax.Array, key: jax.Array | None) -> jax.Array:
        if key is None or self.dropout == 0.0:
            return h
        keep = jax.random.bernoulli(key, 1.0 - self.dropout, h.shape)
        return jnp.where(keep, h / (1.0 - self.dropout), 0.0)

    def __call__(self, users: jax.Array, items: jax.Array, *, key: jax.Array | None = None
                 ) -> jax.Array:
        """Logits for pairs ``(users[j], items[j])`` (any equal shapes); ``key`` enables dropout."""
        keys = [None] * len(self.mlp) if key is None else list(jax.random.split(key, len(self.mlp)))
        gmf = self.user_gmf(users) * self.item_gmf(items)
        h = jnp.concatenate([self.user_mlp(users), self.item_mlp(items)], axis=-1)
        for layer, k in zip(self.mlp, keys):
            h = self._drop(jax.nn.relu(layer(h)), k)
        return self.out(jnp.concatenate([gmf, h], axis=-1))[..., 0]

    def score_all(self, users: jax.Array) -> jax.Array:
        """Logits of every item for each user, ``[B, n_items]``, in blocks of items."""
        n_items, d = self.item_mlp.embedding.shape
        first = self.mlp[0]
        w_u, w_i = first.kernel[...][:d], first.kernel[...][d:]
        w_out = self.out.kernel[...][:, 0]
        g = self.user_gmf.embedding.shape[1]
        user_part = self.user_mlp(users) @ w_u + first.bias[...]  # [B, h1]
        gmf_user = self.user_gmf(users) * w_out[:g]  # [B, g]
        n_blocks = -(-n_items // ITEM_BLOCK)
        pad = n_blocks * ITEM_BLOCK - n_items
        item_mlp = jnp.pad(self.item_mlp.embedding[...], ((0, pad), (0, 0)))
        item_gmf = jnp.pad(self.item_gmf.embedding[...], ((0, pad), (0, 0)))

        def block(args: tuple[jax.Array, jax.Array]) -> jax.Array:
            q_mlp, q_gmf = args  # [ITEM_BLOCK, d], [ITEM_BLOCK, g]
            h = jax.nn.relu(user_part[:, None, :] + (q_mlp @ w_i)[None, :, :])
            for layer in list(self.mlp)[1:]:
                h = jax.nn.relu(layer(h))
            return gmf_user @ q_gmf.T + h @ w_out[g:]  # [B, ITEM_BLOCK]

        blocks = jax.lax.map(block, (item_mlp.reshape(n_blocks, ITEM_BLOCK, -1),
                                     item_gmf.reshape(n_blocks, ITEM_BLOCK, -1)))
        scores = jnp.moveaxis(blocks, 0, 1).reshape(users.shape[0], -1)[:, :n_items]
        return scores + self.out.bias[...][0]


@partial(jax.jit, static_argnums=0)
def _score_all(graphdef: Any, params: Any, users: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, params).score_all(users)


@partial(jax.jit, static_argnums=0)
def _predict(graphdef: Any, params: Any, users: jax.Array, items: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(nnx.merge(graphdef, params)(users, items))


@dataclass(frozen=True)
class NeuMFFitted:
    graphdef: Any
    params: Any
    timings: dict[str, float] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _score_all(self.graphdef, self.params, batch.users)

    def predict(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Probability that the user interacts with the item (binary task: a positive label)."""
        return _predict(self.graphdef, self.params, users, items)


def _neumf_loss(params, batch, key, aux, *, graphdef: Any, n_items: int, negatives: int,
                rounds: int, reg: float):
    model = nnx.merge(graphdef, params)
    u, i, label, mask = batch["user"], batch["item"], batch["label"], batch["mask"]
    k_neg, k_pos, k_negdrop = jax.random.split(key, 3)
    j = sample_negatives(k_neg, u, n_items, aux, shape=(negatives,), rounds=rounds)
    pos = model(u, i, key=k_pos)
    neg = model(jnp.broadcast_to(u[:, None], j.shape), j, key=k_negdrop)
    bce = optax.sigmoid_binary_cross_entropy
    per_row = bce(pos, label) + bce(neg, jnp.zeros_like(neg)).sum(-1)
    loss = (per_row * mask).sum() / jnp.maximum(mask.sum(), 1.0) / (1 + negatives)
    if reg > 0:
        emb = [model.user_gmf(u), model.item_gmf(i), model.user_mlp(u), model.item_mlp(i)]
        sq = sum((e * e).sum(-1) for e in emb)
        loss = loss + reg * (sq * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    return loss


@dataclass(frozen=True)
class NeuMFModel:
    cfg: NeuMFConfig
    ctx: ModelContext

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> NeuMFFitted:
        cfg = self.cfg
        k_init, k_fit = jax.random.split(key)
        model = NeuMF(train.n_users, train.n_items, cfg, rngs=nnx.Rngs(params=k_init))
        graphdef, params = nnx.split(model)
        if self.ctx.task == "binary" and train.rating is not None:
            label = (train.rating >= self.ctx.binary_threshold).astype(np.float32)
        else:
            label = np.ones(len(train), np.float32)
        loss = partial(_neumf_loss, graphdef=graphdef, n_items=train.n_items,
                       negatives=cfg.negatives, rounds=cfg.negative_rounds, reg=cfg.reg)
        validate = None
        if valid is not None and len(valid):
            validate = ranking_validator(lambda p: NeuMFFitted(graphdef, p), train, valid,
                                         metric=NDCG, k=cfg.valid_k)
        result = fit_loop(params, loss, optax.adam(cfg.learning_rate),
                          data={"user": train.user, "item": train.item, "label": label},
                          aux=csr_positives(train), key=k_fit, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, validate=validate,
                          eval_every=cfg.eval_every, patience=cfg.patience)
        return NeuMFFitted(graphdef, result.params, result.timings)


SPECS: list[ModelSpec] = [
    ModelSpec("neumf", "neural-cf", frozenset({"ranking", "binary"}),
              lambda cfg, ctx: NeuMFModel(cfg, ctx), NeuMFConfig,
              "NeuMF (GMF + MLP, Flax NNX): BCE with sampled negatives, Adam, early stopping on "
              "validation NDCG@10"),
]
