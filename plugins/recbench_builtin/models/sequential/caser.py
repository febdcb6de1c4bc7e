"""``caser`` (family ``cnn``): Convolutional Sequence Embedding (Tang & Wang, WSDM 2018).

The last ``window`` items' embeddings form an ``window x dim`` image. Horizontal filters (``n_h``
per height ``1..window``, ReLU, max-pooled over the positions inside the window) catch union-level
patterns; vertical filters (``n_v``, each a weighted sum of the ``window`` rows) catch point-level
ones. Their concatenation -> dropout -> dense to ``dim`` (ReLU) is joined with the user's embedding
and scored against separate output item embeddings plus an item bias (the paper's ``W'``, ``b'``).

Trained at every position (the next-item loss of each prefix): the window ending at position ``t``
is the ``window`` items up to ``t``. All windows of a row are computed at once: a horizontal
filter of height ``h`` is a causal 1-D convolution over the row followed by a sliding maximum over
the last ``window - h + 1`` outputs, a vertical filter a causal weighted sum of the last
``window`` embeddings, so one pass costs no more than one window per position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from recbench.api import ModelSpec, check

from .._conv import Conv1D
from .layers import SequentialNet, Dropout, EMBED_INIT, ItemEmbedding
from .training import SequentialConfig, sequential_spec


def _shifted(x: jax.Array, window: int) -> jax.Array:
    """``[B, T, d]`` -> ``[B, T, window, d]``: at ``t`` the rows ``t - window + 1 .. t`` (zeros
    before the start), oldest first."""
    t = x.shape[1]
    padded = jnp.pad(x, ((0, 0), (window - 1, 0), (0, 0)))
    return jnp.stack([padded[:, s:s + t] for s in range(window)], axis=2)


class CaserNet(SequentialNet):
    cfg: Any  # CaserConfig

    @nn.compact
    def __call__(self, inputs: jax.Array, users: jax.Array, *, deterministic: bool
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
        cfg, w = self.cfg, self.cfg.window
        e = ItemEmbedding(self.n_items, cfg.dim)(inputs)  # [B, T, d]
        vertical = self.param("vertical", nn.initializers.lecun_normal(), (w, cfg.n_v))
        v = jnp.einsum("btwd,wf->btfd", _shifted(e, w), vertical)
        features = [v.reshape(*v.shape[:2], -1)]
        for h in range(1, w + 1):
            # Causal; named as nn.Conv named it (same initial values, saved models load).
            c = jax.nn.relu(Conv1D(cfg.n_h, h, h - 1, name=f"Conv_{h - 1}")(e))  # [B, T, n_h]
            features.append(jax.lax.reduce_window(
                c, -jnp.inf, jax.lax.max, (1, w - h + 1, 1), (1, 1, 1),
                [(0, 0), (w - h, 0), (0, 0)]))
        z = Dropout(cfg.dropout)(jnp.concatenate(features, -1), deterministic=deterministic)
        z = jax.nn.relu(nn.Dense(cfg.dim)(z))
        user = nn.Embed(self.n_users, cfg.dim, embedding_init=EMBED_INIT)(users)
        hidden = jnp.concatenate([z, jnp.broadcast_to(user[:, None], z.shape)], -1)
        table = self.param("output", EMBED_INIT, (self.n_items, 2 * cfg.dim))
        bias = self.param("bias", nn.initializers.zeros, (self.n_items,))
        return hidden, table, bias


@dataclass(frozen=True)
class CaserConfig(SequentialConfig):
    """Caser. Defaults: the paper's window of 5, 16 horizontal filters per height, 4 vertical
    filters, d = 64, dropout 0.5 (RecBole's settings), Adam 0.001, full softmax; training rows
    of 50 positions covering every interaction (``windows = "all"``, see SequentialConfig)."""

    window: int = 5
    n_h: int = 16
    n_v: int = 4
    dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("window", "n_h", "n_v"):
            v = getattr(self, name)
            check(v >= 1, f"{name} must be >= 1 (valid range: [1, inf)), got {v}")
        check(self.window <= self.max_len,
              f"window ({self.window}) must be <= max_len ({self.max_len})")

    def network(self, n_users: int, n_items: int) -> CaserNet:
        return CaserNet(self, n_users, n_items)


SPECS: list[ModelSpec] = [
    sequential_spec("caser", "cnn", CaserConfig,
                    "Caser (Flax): horizontal and vertical convolutions over the last 5 items plus a "
                    "user embedding, next-item loss at every position, Adam, early stopping on "
                    "validation NDCG@10"),
]
