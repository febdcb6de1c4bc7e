"""recbench-demo-plugin: a third-party recbench plugin in one module.

It contributes the model ``demo-item-cooccurrence``, an item-based collaborative filter: two items
are similar when the same users interacted with both (cosine of their user columns, shrunk for rare
items), and a user's score for an item is the summed similarity of that item to everything in the
user's training history. A small popularity term breaks ties (and ranks items for users whose
history co-occurs with nothing).

It also implements the lifecycle hook ``run_finished``: when the environment variable
``RECBENCH_DEMO_LOG`` names a file, one line per finished run is appended to it.

Registered through the entry point ``demo = "recbench_demo_plugin"`` in the group ``recbench``
(see pyproject.toml). The similarity table is dense, ``n_items x n_items`` float32: fine for the
tens of thousands of items of the usual benchmark datasets, not for millions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# recbench.api is the whole plugin API; other recbench modules are private.
from recbench.api import Interactions, ModelSpec, UserBatch, check, hookimpl


@dataclass(frozen=True)
class CooccurrenceConfig:
    """Options of ``demo-item-cooccurrence`` (set them under ``config`` in the experiment TOML)."""

    # Range and help are what `recbench models demo-item-cooccurrence` shows.
    shrink: float = field(default=10.0, metadata={
        "range": (0.0, None),
        "help": "added to the cosine's denominator: damps pairs of rarely seen items"})
    popularity_weight: float = field(default=1e-3, metadata={
        "range": (0.0, None), "help": "weight of the (max-normalised) popularity tie-breaker"})

    def __post_init__(self) -> None:
        check(self.shrink >= 0, f"shrink must be >= 0, got {self.shrink}")
        check(self.popularity_weight >= 0,
              f"popularity_weight must be >= 0, got {self.popularity_weight}")


@jax.jit
def _similarity(cooccurrence: jax.Array, shrink: jax.Array) -> jax.Array:
    """Shrunk cosine similarity from a co-occurrence count matrix; the diagonal is zeroed."""
    norm = jnp.sqrt(jnp.diagonal(cooccurrence))  # diagonal = users per item
    sim = cooccurrence / (norm[:, None] * norm[None, :] + shrink + 1e-9)
    return jnp.where(jnp.eye(cooccurrence.shape[0], dtype=bool), 0.0, sim).astype(jnp.float32)


@jax.jit
def _score(similarity: jax.Array, popularity: jax.Array, history: jax.Array) -> jax.Array:
    """``[B, n_items]`` scores: multi-hot training history times the similarity table."""
    batch, n_items = history.shape[0], similarity.shape[0]
    rows = jnp.arange(batch)[:, None]
    # Padding in ``history`` is the out-of-range id n_items: mode="drop" ignores it.
    seen = jnp.zeros((batch, n_items), jnp.float32).at[rows, history].set(1.0, mode="drop")
    return seen @ similarity + popularity[None, :]


@dataclass(frozen=True)
class CooccurrenceFitted:
    similarity: jax.Array  # float32 [n_items, n_items]
    popularity: jax.Array  # float32 [n_items], in [0, popularity_weight]

    def score(self, batch: UserBatch) -> jax.Array:
        return _score(self.similarity, self.popularity, batch.history)


@dataclass(frozen=True)
class CooccurrenceModel:
    config: CooccurrenceConfig

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            key: jax.Array) -> CooccurrenceFitted:
        # Deterministic: ``key`` is not needed. ``train.csr`` is the binary users x items matrix.
        x = train.csr
        cooccurrence = np.asarray((x.T @ x).todense(), np.float32)
        counts = np.asarray(train.item_counts, np.float32)
        popularity = self.config.popularity_weight * counts / max(float(counts.max(initial=0)), 1.0)
        return CooccurrenceFitted(
            _similarity(jnp.asarray(cooccurrence), jnp.float32(self.config.shrink)),
            jnp.asarray(popularity, jnp.float32))


@hookimpl
def register_models() -> list[ModelSpec]:
    return [ModelSpec(
        name="demo-item-cooccurrence",
        family="cf-item",
        tasks=frozenset({"ranking"}),
        factory=lambda cfg, ctx: CooccurrenceModel(cfg),
        config=CooccurrenceConfig,
        description="item-kNN: summed shrunk-cosine co-occurrence with the user's history",
    )]


@hookimpl
def run_finished(experiment: Any, records: list[dict[str, Any]]) -> None:
    """Append ``<experiment name>\\t<ok>/<total> trials ok`` to $RECBENCH_DEMO_LOG, if set."""
    path = os.environ.get("RECBENCH_DEMO_LOG")
    if not path:
        return
    ok = sum(r.get("status") == "ok" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{experiment.name}\t{ok}/{len(records)} trials ok\n")

