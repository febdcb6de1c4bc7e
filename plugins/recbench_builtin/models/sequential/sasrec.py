"""``sasrec`` (family ``attention``): Self-Attentive Sequential Recommendation (Kang & McAuley,
ICDM 2018).

Item embeddings plus learned position embeddings over the last ``max_len`` items (left-padded, the
most recent last), dropout, ``blocks`` pre-LayerNorm Transformer blocks (causal multi-head
self-attention with padding keys masked, then a position-wise two-layer ReLU feed-forward of width
``dim``; dropout on attention weights and after each sub-layer, residual connections), a final
LayerNorm; the output at position ``t`` is scored against the shared item embeddings to predict
item ``t + 1``. The next-item loss is taken at every position (the paper's objective). The paper's
BCE with one negative is ``loss = "bce"``; the default full softmax (Klenitskiy & Vasilev, RecSys
2023: "SASRec+") and ``loss = "sampled"`` (eSASRec) train markedly better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from recbench.api import ModelSpec, check

from .layers import SequentialNet, EMBED_INIT, Dropout, ItemEmbedding, hashed_dropout
from .training import SequentialConfig, sequential_spec


def _attention(query: jax.Array, key: jax.Array, value: jax.Array, bias: Any = None,
               mask: Any = None, dropout_rng: Any = None, dropout_rate: float = 0.0,
               deterministic: bool = True, **_: Any) -> jax.Array:
    """Flax's dot-product attention with the hashed dropout mask on the attention weights."""
    weights = nn.dot_product_attention_weights(query, key, bias, mask)
    if not deterministic and dropout_rate > 0.0:
        weights = hashed_dropout(weights, jax.random.bits(dropout_rng, (2,), jnp.uint32),
                                 dropout_rate)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value)


class Block(nn.Module):
    dim: int
    heads: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, *, deterministic: bool) -> jax.Array:
        drop = Dropout(self.dropout)
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.dim,
                                            dropout_rate=self.dropout,
                                            attention_fn=_attention)(
            h, h, mask=mask, deterministic=deterministic)
        x = x + drop(h, deterministic=deterministic)
        h = nn.Dense(self.dim)(nn.LayerNorm()(x))
        h = nn.Dense(self.dim)(drop(jax.nn.relu(h), deterministic=deterministic))
        return x + drop(h, deterministic=deterministic)


class SASRecNet(SequentialNet):
    cfg: Any  # SASRecConfig

    @nn.compact
    def __call__(self, inputs: jax.Array, users: jax.Array, *, deterministic: bool
                 ) -> tuple[jax.Array, jax.Array, None]:
        cfg = self.cfg
        items = ItemEmbedding(self.n_items, cfg.dim)
        real = inputs < self.n_items  # [B, L]
        positions = self.param("positions", EMBED_INIT, (inputs.shape[1], cfg.dim))
        x = items(inputs) + positions[None]
        x = x * real[..., None].astype(x.dtype)
        x = Dropout(cfg.dropout)(x, deterministic=deterministic)
        # Causal and padding-key mask, [B, 1, L, L]; a padding query sees no key and gets
        # uniform weights (finite), and its output takes no part in the loss.
        length = inputs.shape[1]
        mask = jnp.tril(jnp.ones((length, length), bool))[None, None] & real[:, None, None, :]
        for _ in range(cfg.blocks):
            x = Block(cfg.dim, cfg.heads, cfg.dropout)(x, mask, deterministic=deterministic)
            x = x * real[..., None].astype(x.dtype)
        return nn.LayerNorm()(x), items.table(), None


@dataclass(frozen=True)
class SASRecConfig(SequentialConfig):
    """SASRec. Defaults: 2 blocks, 1 head, d = 64, 50 items of history, dropout 0.2, Adam 0.001,
    full-softmax loss (the paper: 2 blocks, 1 head, d = 50, Adam 0.001; dropout 0.2 and 200 items
    on ML-1M, dropout 0.5 and 50 items on the sparse Amazon data)."""

    blocks: int = 2
    heads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.blocks >= 1 and self.heads >= 1,
              f"blocks and heads must be >= 1, got {self.blocks} and {self.heads}")
        check(self.dim % self.heads == 0,
              f"dim ({self.dim}) must be a multiple of heads ({self.heads})")

    def network(self, n_users: int, n_items: int) -> SASRecNet:
        return SASRecNet(self, n_users, n_items)


SPECS: list[ModelSpec] = [
    sequential_spec("sasrec", "attention", SASRecConfig,
                    "SASRec (Flax): causal self-attention over the last 50 items with learned "
                    "positions, next-item loss at every position (full softmax, sampled softmax or "
                    "BCE), Adam, early stopping on validation NDCG@10"),
]
