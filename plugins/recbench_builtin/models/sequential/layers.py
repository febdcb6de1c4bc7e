"""Flax (linen) building blocks the sequential networks share."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ..neural_cf import _dropout as hashed_dropout

# Embedding initialiser of RecBole's sequential models (and BERT): N(0, 0.02).
EMBED_INIT = nn.initializers.normal(0.02)


class SequentialNet(nn.Module):
    """Base of the networks: built from the model's config and the id-space sizes; called as
    ``net(inputs [B, L], users [B], deterministic=...)`` it returns ``(hidden [B, L, d],
    table [n_items, d], bias [n_items] | None)`` (see :mod:`.training`)."""

    cfg: Any
    n_users: int
    n_items: int


class ItemEmbedding(nn.Module):
    """Item ids (``n_items`` = padding) -> vectors, padding -> 0; ``table`` is the ``[n_items, d]``
    part a network scores against (its padding row is never a candidate)."""

    n_items: int
    dim: int

    def setup(self) -> None:
        self.embed = nn.Embed(self.n_items + 1, self.dim, embedding_init=EMBED_INIT)

    def __call__(self, ids: jax.Array) -> jax.Array:
        e = self.embed(ids)
        return e * (ids < self.n_items)[..., None].astype(e.dtype)

    def table(self) -> jax.Array:
        return self.embed.embedding[:self.n_items]


class Dropout(nn.Module):
    """Inverted dropout whose mask is hashed from the element index and two random words drawn
    from the module's ``"dropout"`` key (Flax folds each layer's path into it, so every layer and
    step gets its own mask from the one key the step is given). Same distribution as
    ``nn.Dropout``; on CPU threefry bits for full-size masks cost several times the step's matrix
    products at run time and about half the epoch's compile time (see neural_cf)."""

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        seed = jax.random.bits(self.make_rng("dropout"), (2,), jnp.uint32)
        return hashed_dropout(x, seed, self.rate)


def _masked_step(cell: nn.Module, carry, inputs):
    """One recurrent step that leaves the state unchanged at padding positions (left padding:
    the state stays at its initial zeros until the first real item)."""
    x, keep = inputs
    new_carry, y = cell(carry, x)
    keep = keep[:, None]
    carry = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new_carry, carry)
    return carry, jnp.where(keep, y, 0.0)


class MaskedRNN(nn.Module):
    """A GRU or LSTM over ``[B, L, d]`` inputs with a ``[B, L]`` mask, as one ``lax.scan``
    (``nn.scan``); returns the output at every position, ``[B, L, features]``."""

    cell: str  # "gru" | "lstm"
    features: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        # OptimizedLSTMCell: Flax's LSTM with the four gates in one matrix product per input.
        cell = (nn.GRUCell if self.cell == "gru" else nn.OptimizedLSTMCell)(features=self.features)
        carry = cell.initialize_carry(jax.random.key(0), x[:, 0].shape)  # zeros: the key is unused
        carry = jax.tree.map(lambda c: c.astype(x.dtype), carry)  # bfloat16 with compute_dtype
        scan = nn.scan(_masked_step, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=1, out_axes=1)
        _, ys = scan(cell, carry, (x, mask))
        return ys
