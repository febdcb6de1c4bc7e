"""``two-tower``: an item tower over attributes and description tokens (a 1-D CNN), a user tower
over the history, trained with in-batch softmax; Flax ``linen`` + optax on the shared loop.

Item tower, for every item of the catalogue at every step (one ``[n_items, ...]`` pass, cheaper
than running it for each batch row's history):

    z_i = Dense_k([f_i, maxpool_t relu(Conv1D(E[tokens_i]))_t])      v_i = normalise(z_i + e_i)

``f_i`` are the item attributes of :mod:`..content.features` (categories, robust-scaled numbers;
TF-IDF text only with ``text_features > 0``: by default the text goes through the CNN alone).
The tokens are the item text (description, or title) split by scikit-learn's analyser, mapped
into a vocabulary of at most ``vocab_size`` words seen in at least ``text_min_df`` items, built
at fit time from the whole catalogue's text (side information every item has, cold ones
included; no interaction is read); an out-of-vocabulary word has its own id, texts are cut to
``max_tokens``. Padding is masked: id 0 is a zero input of the convolution and its positions
take no part in the max-pool (an item with no text pools to 0). ``e_i`` is the
optional item identity embedding (``item_identity``): zero at the start, and zeroed after
training for every item without training interactions, so a cold item is scored from its
attributes and text alone, as ``lightfm`` does.

User tower: ``p_u = normalise(Dense_k(mean_{j in H_u} v_j) + e_u)``, ``H_u`` the user's
``history_length`` most recent training items (during training without the row's target item,
which the user tower must not see), ``e_u`` the optional user identity embedding. Score
``p_u . v_i``.

Loss: in-batch softmax: for a batch of (user, item) rows, each row's item is the positive and
the items of the batch's first ``negatives`` rows are its negatives (rows are shuffled, so a
random subset of the batch, shared by every row; a copy of the positive among them is masked),
logits ``p_u . v_j / temperature``. ``negatives = 0`` takes every row's item; the default 512
of 2,048 keeps the ``[batch, negatives]`` logits in cache: at ML-1M size an epoch took 3.95 s
against 7.34 s with every row's, in one run (``bench/bench_content.py --two-tower-parts``).
Together with the text CNN's and max-pool's rewrites and a history of 20, warm ML-100K's
NDCG@10 went from 0.3148 to 0.3079, online-retail's from 0.1407 to 0.1413, and both cold
splits' NDCG@20 up (``results/README.md``). The items of a batch are drawn in proportion to
their popularity, so an uncorrected softmax over them pushes popular items down more than the
full softmax would: ``logq = true`` (the default) subtracts ``log q_j``, ``q_j`` item ``j``'s
share of the training rows (Yi et al. 2019, "Sampling-bias-corrected neural modeling"), so the
logits estimate the full softmax that the full-ranking evaluation asks for. No uniform
negatives: an item without training interactions (a held-out cold item) takes no part in
training at all, neither as a positive nor as a negative. Adam; early stopping on validation
NDCG@``valid_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import (
    DataclassState,
    DataError,
    Interactions,
    ModelContext,
    ModelSpec,
    UserBatch,
    cached_optimizer,
    check,
    fit_loop,
    masked_mean,
    ranking_validator,
    restores,
)

from ...metrics import NDCG
from ..content.features import encode_table, require_side_information, without_cold_identities
from .._conv import TokenConv1D
from .lightfm import _masked_adam
from .options import HybridTrainingOptions
from .text import TokenTable, tokenize

# Added to a masked logit, and put in place of a padding position before the max-pool (relu then
# makes it 0); finite: -inf would give NaN gradients.
_MASKED = -1e9
_EPS = 1e-6  # norm floor: a user with no history and no identity is the zero vector, not NaN


@dataclass(frozen=True)
class TwoTowerConfig(HybridTrainingOptions):
    text_features: int = field(default=0, metadata={
        "range": (0, None), "help": "TF-IDF terms of the item text in the attribute input too "
                                    "(0: the text goes through the CNN only)"})
    factors: int = field(default=64, metadata={"range": (1, None), "help": "tower output size"})
    vocab_size: int = field(default=5000, metadata={
        "range": (0, None), "help": "most words of the item text vocabulary (0: no text CNN)"})
    max_tokens: int = field(default=8, metadata={
        "range": (1, None), "help": "tokens per item text (longer texts are cut)"})
    embed_dim: int = field(default=32, metadata={"range": (1, None), "help": "word embedding size"})
    filters: int = field(default=32, metadata={"range": (1, None), "help": "CNN output channels"})
    kernel: int = field(default=3, metadata={"range": (1, None), "help": "CNN window, in tokens"})
    # 20 over 50: NDCG@20, mean of seeds 0-2, cold splits ML-100K 0.3019 against 0.2947 and
    # online-retail 0.2074 against 0.2063, warm 0.3282 against 0.3269 and 0.1602 against 0.1608;
    # the pooling's gathers and their gradient are a third of the epoch at 50.
    history_length: int = field(default=20, metadata={
        "range": (1, None), "help": "most recent training items the user tower pools"})
    item_identity: bool = field(default=True, metadata={
        "help": "an identity embedding per item in the item tower (zero for cold items)"})
    user_identity: bool = field(default=True, metadata={
        "help": "an identity embedding per user in the user tower"})
    logq: bool = field(default=True, metadata={
        "help": "logQ correction of the in-batch softmax for popularity-biased negatives"})
    # 0.2 over 0.1: validation NDCG@10 0.266 against 0.216 on the ML-100K 8:1:1 split of seed 0
    # (the validation part only); 0.1 overfitted after 4 epochs.
    temperature: float = field(default=0.2, metadata={"range": (0.0, None)})
    batch_size: int = field(default=2048, metadata={
        "range": (2, None), "help": "rows per step"})
    negatives: int = field(default=512, metadata={
        "range": (0, None), "help": "in-batch negatives: the items of the batch's first "
                                    "`negatives` rows, shared by every row (0: every row's)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("factors", "max_tokens", "embed_dim", "filters", "kernel", "history_length"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(self.vocab_size >= 0, f"vocab_size must be >= 0, got {self.vocab_size}")
        check(self.batch_size >= 2, f"batch_size must be >= 2 (in-batch negatives), got "
                                    f"{self.batch_size}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(self.negatives >= 0, f"negatives must be >= 0, got {self.negatives}")

    @property
    def shared_negatives(self) -> int:
        """Negatives per row: ``negatives``, or the whole batch for 0, at most the batch."""
        return min(self.negatives or self.batch_size, self.batch_size)


class _ItemTower(nn.Module):
    """Attributes and a masked, max-pooled 1-D CNN over the tokens, projected to ``factors``."""
    factors: int
    vocab: int  # rows of the word table (0: no text input)
    embed_dim: int
    filters: int
    kernel: int

    @nn.compact
    def __call__(self, attrs: jax.Array, tokens: jax.Array) -> jax.Array:
        parts = [attrs] if attrs.shape[1] else []
        if self.vocab:
            present = (tokens > 0)[..., None]  # id 0 is padding
            table = nn.Embed(self.vocab, self.embed_dim).embedding
            # Named as before the shared layer existed: the same initial values.
            h = TokenConv1D(self.filters, self.kernel, (self.kernel - 1) // 2,
                            name="_Conv1D_0")(table, tokens)
            # relu(max) = max(relu): the relu on [N, filters], not [N, T, filters]; an item
            # without text pools to relu(_MASKED) = 0.
            parts.append(nn.relu(_max_over_positions(jnp.where(present, h, _MASKED))))
        return nn.Dense(self.factors)(jnp.concatenate(parts, axis=-1))


@jax.custom_vjp
def _max_over_positions(x: jax.Array) -> jax.Array:
    """``x.max(axis=1)`` whose gradient goes to the first maximum. ``jnp.max``'s splits it among
    ties, which adds a count and a division over all of ``x`` on every step (ML-1M size: the
    step from ~15 to ~12 ms with the relu moved after the pool). Reverse mode only."""
    return x.max(axis=1)


def _max_forward(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    top = x.max(axis=1)
    return top, (x, top)


def _max_backward(saved: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array]:
    x, top = saved
    # The first maximum: the least position holding the maximum (not jnp.argmax, a slower
    # two-operand reduction on the CPU).
    position = jnp.arange(x.shape[1], dtype=jnp.int32)[None, :, None]
    first = jnp.where(x == top[:, None, :], position, x.shape[1]).min(axis=1)
    return (jnp.where(position == first[:, None, :], g[:, None, :], 0.0),)


_max_over_positions.defvjp(_max_forward, _max_backward)


@lru_cache(maxsize=None)
def _tower(factors: int, vocab: int, embed_dim: int, filters: int, kernel: int) -> _ItemTower:
    return _ItemTower(factors, vocab, embed_dim, filters, kernel)  # one object per shape


def _normalise(x: jax.Array) -> jax.Array:
    # Not jnp.linalg.norm: its gradient at a zero vector is NaN.
    return x * jax.lax.rsqrt(jnp.maximum((x * x).sum(-1, keepdims=True), _EPS ** 2))


def _items(params, tower: _ItemTower, attrs: jax.Array, tokens: jax.Array) -> jax.Array:
    """Every item's unit vector, plus a zero row for the history padding id ``n_items``."""
    z = tower.apply({"params": params["tower"]}, attrs, tokens) + params["item_id"]
    return jnp.concatenate([_normalise(z), jnp.zeros((1, z.shape[1]), z.dtype)])


def _users(params, items: jax.Array, history: jax.Array, users: jax.Array,
           keep: jax.Array) -> jax.Array:
    """Unit user vectors: the mean of the ``keep`` history items' vectors, projected, plus the
    user identity. The mean gathers the ``[B, L]`` history rows of the item table (its gradient a
    scatter-add of B x L rows). At ML-1M size and L = 50 that was 10 ms a step forward and
    backward against 34 ms for the same mean as a ``[B, n_items + 1]`` weight matrix times the
    table (a product of B x n_items x factors whatever L is); the epoch went from 31.4 to 22.6 s."""
    weight = keep.astype(items.dtype)
    weight = weight / jnp.maximum(weight.sum(-1, keepdims=True), 1.0)
    pooled = jnp.einsum("bl,blk->bk", weight, items[history])
    return _normalise(pooled @ params["user_w"] + params["user_b"] + params["user_id"][users])


def _in_batch_softmax(p: jax.Array, v: jax.Array, item_ids: jax.Array, mask: jax.Array,
                      log_q: jax.Array, negatives: int) -> jax.Array:
    """Per-row loss: ``-log softmax`` of the row's own logit ``p_r . v_r - log q`` among the
    logits of its negatives, the items of the batch's first ``negatives`` rows (rows are
    shuffled, so a random subset), shared by every row, less any copy of the row's own item (its
    own column included) and padding rows (``mask`` 0). ``p`` is the user side already divided
    by the temperature."""
    own = (p * v).sum(-1) - log_q[item_ids]
    shared = item_ids[:negatives]
    bias = jnp.where((item_ids[:, None] == shared[None, :]) | (mask[None, :negatives] == 0),
                     _MASKED, -log_q[shared][None, :])
    # A masked logit is p . v - 1e9: nothing, for unit vectors over any sensible temperature.
    logits = p @ v[:negatives].T + bias  # [B, negatives]
    return jnp.logaddexp(jax.nn.logsumexp(logits, axis=-1), own) - own


def _loss(params, batch, key, aux, *, tower: _ItemTower, negatives: int):
    u, i, mask = batch["user"], batch["item"], batch["mask"]
    items = _items(params, tower, aux["attrs"], aux["tokens"])
    history = aux["history"][u]
    keep = (history < aux["n_items"]) & (history != i[:, None])  # the target stays unseen
    # Divided by the temperature here: [B, k] values, not the [B, negatives] logits.
    p = _users(params, items, history, u, keep) / aux["temperature"]
    per_row = _in_batch_softmax(p, items[i], i, mask, aux["log_q"], negatives)
    return masked_mean(per_row, mask)


@lru_cache(maxsize=None)
def _loss_for(tower: _ItemTower, negatives: int):
    return partial(_loss, tower=tower, negatives=negatives)


@partial(jax.jit, static_argnames=("tower",))
def _representations(params, attrs, tokens, history, n_items, *, tower):
    items = _items(params, tower, attrs, tokens)
    users = jnp.arange(history.shape[0])
    return _users(params, items, history, users, history < n_items), items[:-1]


@jax.jit
def _scores(users_repr: jax.Array, items_repr: jax.Array, users: jax.Array) -> jax.Array:
    return users_repr[users] @ items_repr.T


@dataclass(frozen=True)
class TwoTowerFitted(DataclassState):
    user_repr: jax.Array  # [n_users, factors], unit rows (or zero)
    item_repr: jax.Array  # [n_items, factors], unit rows
    fit_info: dict[str, int | float | str] = field(default_factory=dict)

    def score(self, batch: UserBatch) -> jax.Array:
        return _scores(self.user_repr, self.item_repr, batch.users)


def recent_items(train: Interactions, length: int) -> np.ndarray:
    """``[n_users, length]`` int32: each user's ``length`` most recent training items in time
    order, right-padded with ``n_items``."""
    ptr, items = train.sequences()
    start = np.maximum(ptr[:-1], ptr[1:] - length)
    index = start[:, None] + np.arange(length)[None, :]
    inside = index < ptr[1:, None]
    picked = items[np.clip(index, 0, max(len(items) - 1, 0))] if len(items) else index
    return np.where(inside, picked, train.n_items).astype(np.int32)


@dataclass(frozen=True)
class TwoTower:
    config: TwoTowerConfig
    context: ModelContext

    restore = restores(TwoTowerFitted)

    def _inputs(self) -> tuple[np.ndarray, TokenTable | None, dict[str, int]]:
        """The attribute matrix (dense, ``[n_items, d]``, d may be 0) and the token table;
        refuses a dataset that gives neither."""
        cfg, ctx = self.config, self.context
        require_side_information(ctx, "two-tower")
        tokens = None
        if ctx.item_text is not None and cfg.vocab_size:
            tokens = tokenize(ctx.item_text, cfg.vocab_size, cfg.text_min_df, cfg.max_tokens)
        attrs = np.zeros((ctx.n_items, 0), np.float32)
        text = ctx.item_text if cfg.text_features else None
        if ctx.item_features is not None or text is not None:
            attrs = encode_table(ctx.item_features, text, ctx.n_items, cfg,
                                 "model 'two-tower'").matrix.toarray()
        elif tokens is None:
            raise DataError("model 'two-tower': the item text has no word seen in at least "
                            f"text_min_df = {cfg.text_min_df} items and the dataset has no item "
                            "features (ModelContext.item_features); lower text_min_df or give "
                            "the items attributes")
        info = {"item_attributes": int(attrs.shape[1]),
                "vocabulary": tokens.words if tokens is not None else 0,
                "items_without_text": (tokens.empty if tokens is not None else ctx.n_items)}
        return attrs.astype(np.float32), tokens, info

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> TwoTowerFitted:
        cfg, ctx = self.config, self.context
        attrs_np, tokens, info = self._inputs()
        attrs = jnp.asarray(attrs_np)
        ids = jnp.asarray(tokens.ids if tokens is not None
                          else np.zeros((ctx.n_items, 1), np.int32))
        tower = _tower(cfg.factors, tokens.rows if tokens is not None else 0, cfg.embed_dim,
                       cfg.filters, cfg.kernel)
        k = cfg.factors
        keys = jax.random.split(key, 4)
        params: dict[str, Any] = {
            "tower": tower.init(keys[0], attrs[:1], ids[:1])["params"],
            # Zero, and zeroed again for items without interactions after training: cold items
            # are scored from attributes and text alone.
            "item_id": jnp.zeros((ctx.n_items, k), jnp.float32),
            "user_w": nn.initializers.lecun_normal()(keys[1], (k, k), jnp.float32),
            "user_b": jnp.zeros(k, jnp.float32),
            "user_id": (0.1 * jax.random.normal(keys[2], (ctx.n_users, k), jnp.float32)
                        if cfg.user_identity else jnp.zeros((ctx.n_users, k), jnp.float32)),
        }
        frozen = tuple(n for n, on in (("item_id", cfg.item_identity),
                                       ("user_id", cfg.user_identity)) if not on)
        optimizer = cached_optimizer(_masked_adam, learning_rate=cfg.learning_rate, frozen=frozen)
        counts = train.item_counts.astype(np.float64)
        log_q = np.log(np.maximum(counts, 1.0) / max(len(train), 1)) if cfg.logq else 0 * counts
        history = jnp.asarray(recent_items(train, cfg.history_length))
        n_items = jnp.int32(ctx.n_items)

        def make(p, extra=None) -> TwoTowerFitted:
            users, items = _representations(p, attrs, ids, history, n_items, tower=tower)
            return TwoTowerFitted(users, items, dict(extra or {}))

        validate = None
        if valid is not None and len(valid):
            validate = ranking_validator(make, train, valid, metric=NDCG, k=cfg.valid_k,
                                         candidates=ctx.candidates)
        aux = {"attrs": attrs, "tokens": ids, "history": history, "n_items": n_items,
               "log_q": jnp.asarray(log_q, jnp.float32),
               "temperature": jnp.float32(cfg.temperature)}
        result = fit_loop(params, _loss_for(tower, cfg.shared_negatives), optimizer,
                          data={"user": train.user, "item": train.item}, aux=aux, key=keys[3],
                          epochs=cfg.epochs, batch_size=cfg.batch_size, validate=validate,
                          eval_every=cfg.eval_every, patience=cfg.patience)
        params = without_cold_identities(result.params, train, ("item_id",))
        return make(params, {**result.info, **info})


SPECS: list[ModelSpec] = [
    ModelSpec("two-tower", "hybrid", frozenset({"ranking"}),
              lambda cfg, ctx: TwoTower(cfg, ctx), TwoTowerConfig,
              "two-tower: item tower over attributes and a 1-D CNN over description tokens, user "
              "tower over the history; in-batch softmax over shared negatives with logQ "
              "correction; scores cold items",
              requires=frozenset({"item_features"}), families=("cnn",), cold_items=True),
]
