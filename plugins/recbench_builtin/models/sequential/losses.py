"""The next-item loss at every position of a left-padded row, in three flavours.

``hidden`` ``[B, L, d]`` are the network's outputs (position ``t`` has seen the items up to ``t``),
``targets`` ``[B, L]`` the next items (``n_items`` = no target: padding), ``table`` ``[n_items, d]``
the output item embeddings and ``bias`` an optional ``[n_items]`` item bias. The loss is the mean
over the real targets of the batch.

- ``softmax``: cross-entropy over all items (SASRec+ of Klenitskiy & Vasilev; RecBole's "CE").
  Exact, costs ``B x L x n_items`` logits per step.
- ``sampled``: cross-entropy over the target and ``negatives`` items drawn uniformly, shared by the
  whole batch (one ``[negatives, d]`` gather per step); a negative equal to a position's target is
  masked out there. Uniform proposals need no logQ correction (it is a constant).
- ``bce``: binary cross-entropy of the target against one negative per position, drawn uniformly
  among the items the user has not interacted with in training (SASRec's original loss;
  :func:`recbench.api.sample_negatives` with the CSR positives passed as ``positives``).

The choice moves published numbers by up to 2x (``../shared/BENCHMARKS.md``), so it is a config
key of every sequential model.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from recbench.api import sample_negatives

LOSSES = ("softmax", "sampled", "bce")
_MASKED = -1e9  # a logit that takes no part in a softmax


def _logits(hidden: jax.Array, table: jax.Array, bias: jax.Array | None, items: jax.Array
            ) -> jax.Array:
    """``hidden . table[items]`` (+ bias), with ``items`` shaped like ``hidden``'s leading axes."""
    out = (hidden * table[items]).sum(-1, dtype=jnp.float32)
    return out if bias is None else out + bias[items].astype(out.dtype)


def next_item_loss(kind: str, hidden: jax.Array, targets: jax.Array, table: jax.Array,
                   bias: jax.Array | None, key: jax.Array, *, row_mask: jax.Array,
                   users: jax.Array, negatives: int, positives: Any = None) -> jax.Array:
    """Mean next-item loss over the real targets (see the module doc); ``row_mask`` ``[B]`` is
    fit_loop's 1/0 mask of real rows."""
    n_items = table.shape[0]
    valid = (targets < n_items) & (row_mask[:, None] > 0)
    target = jnp.minimum(targets, n_items - 1)
    if kind == "softmax":
        logits = jnp.matmul(hidden, table.T, preferred_element_type=jnp.float32)
        if bias is not None:
            logits = logits + bias.astype(logits.dtype)
        per = optax.softmax_cross_entropy_with_integer_labels(logits, target)
    elif kind == "sampled":
        neg = jax.random.randint(key, (negatives,), 0, n_items, dtype=jnp.int32)
        neg_logits = jnp.matmul(hidden, table[neg].T, preferred_element_type=jnp.float32)
        if bias is not None:
            neg_logits = neg_logits + bias[neg].astype(neg_logits.dtype)
        neg_logits = jnp.where(neg == target[..., None], _MASKED, neg_logits)
        logits = jnp.concatenate([_logits(hidden, table, bias, target)[..., None], neg_logits],
                                 axis=-1)
        per = optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.zeros(target.shape, jnp.int32))
    elif kind == "bce":
        neg = sample_negatives(key, users, n_items, positives, shape=(targets.shape[1],))
        per = (jax.nn.softplus(-_logits(hidden, table, bias, target))
               + jax.nn.softplus(_logits(hidden, table, bias, neg)))
    else:
        raise ValueError(f"unknown loss {kind!r}; use one of {LOSSES}")
    weight = valid.astype(jnp.float32)
    return (per * weight).sum() / jnp.maximum(weight.sum(), 1.0)
