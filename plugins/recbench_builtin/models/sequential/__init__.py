"""Sequential recommenders (Flax): ``sasrec``, ``gru4rec``, ``lstm``, ``caser``.

Shared pieces, written once: :mod:`.histories` (left-padded fixed-length histories and training
rows), :mod:`.losses` (full softmax, sampled softmax, BCE), :mod:`.training` (config keys,
fit_loop training with early stopping, scoring from ``UserBatch``), :mod:`.layers`.
"""

from __future__ import annotations

from . import caser, rnn, sasrec

SPECS = [*sasrec.SPECS, *rnn.SPECS, *caser.SPECS]
