"""``gru4rec`` (family ``rnn``) and ``lstm`` (family ``lstm``): a recurrent network over the history.

GRU4Rec (Hidasi et al., ICLR 2016) in its session-parallel-free, RecBole form: item embeddings ->
dropout -> ``layers`` stacked recurrent layers of ``hidden`` units -> a dense map back to ``dim`` ->
scores against the (shared) item embeddings, trained with the next-item loss at every position
(RecBole trains on the last position only; every position is the same objective with more
targets per row, as SASRec does).

``lstm`` is the same network with an LSTM cell (Flax's ``OptimizedLSTMCell``): GRU4Rec-shaped
rather than NARM-style attention over LSTM states, so that the two leaderboard rows differ in the
cell alone (same embedding, loss, training and early stopping), which is what a comparison of
recurrent cells needs; attention over the states is what ``sasrec`` studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
from flax import linen as nn

from recbench.api import ModelSpec, check

from .layers import SequentialNet, Dropout, ItemEmbedding, MaskedRNN
from .training import SequentialConfig, sequential_spec


class RecurrentNet(SequentialNet):
    cfg: Any  # RNNConfig

    @nn.compact
    def __call__(self, inputs: jax.Array, users: jax.Array, *, deterministic: bool
                 ) -> tuple[jax.Array, jax.Array, None]:
        cfg = self.cfg
        items = ItemEmbedding(self.n_items, cfg.dim)
        mask = inputs < self.n_items
        h = Dropout(cfg.dropout)(items(inputs), deterministic=deterministic)
        for _ in range(cfg.layers):
            h = MaskedRNN(cfg.cell, cfg.hidden)(h, mask)
        h = nn.Dense(cfg.dim)(h)
        h = h * mask[..., None].astype(h.dtype)
        return h, items.table(), None


@dataclass(frozen=True)
class RNNConfig(SequentialConfig):
    """GRU4Rec / LSTM. Defaults: RecBole's GRU4Rec (64-d embeddings and hidden state, one layer,
    Adam 0.001, full softmax) except embedding dropout 0.2 (RecBole 0.3), and 50 items of
    history."""

    cell: ClassVar[str] = "gru"  # the model, not a setting: lstm is LSTMConfig
    hidden: int = 64
    layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.hidden >= 1 and self.layers >= 1,
              f"hidden and layers must be >= 1, got {self.hidden} and {self.layers}")

    def network(self, n_users: int, n_items: int) -> RecurrentNet:
        return RecurrentNet(self, n_users, n_items)


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    """The LSTM recommender: GRU4Rec's network and defaults with an LSTM cell."""

    cell: ClassVar[str] = "lstm"


SPECS: list[ModelSpec] = [
    sequential_spec("gru4rec", "rnn", RNNConfig,
                    "GRU4Rec (Flax GRU over the last 50 items): next-item loss at every position (full "
                    "softmax, sampled softmax or BCE), Adam, early stopping on validation NDCG@10"),
    sequential_spec("lstm", "lstm", LSTMConfig,
                    "LSTM recommender: GRU4Rec's network with an LSTM cell (not NARM's attention), so it "
                    "differs from gru4rec in the cell alone; same loss, training and early stopping"),
]
