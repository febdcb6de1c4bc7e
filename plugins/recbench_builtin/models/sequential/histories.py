"""Fixed-length, left-padded item histories: the training rows and the scoring input.

Order: a user's interactions are sorted by timestamp, stably (``Interactions.sequences``): equal
timestamps keep the order of the rows in the data, the same rule the evaluator uses for
``UserBatch.history``, so training and scoring see one order.

Layout: ``[B, L]`` int32, the most recent item in the last column, padding (the id ``n_items``,
one past the last item, as in ``UserBatch``) on the left; ``mask = ids < n_items``.

Training rows (:func:`training_rows`): position ``t`` of a row has the input item ``s[t]`` and the
target ``s[t + 1]``, the next item, so the loss sees a target at every position. A user's sequence
of ``n`` items gives ``n - 1`` (input, target) pairs:

- ``windows = "last"`` (the rule of SASRec's original code): one row per user holding the most
  recent ``L`` pairs; a longer history is truncated to its most recent ``L + 1`` items;
- ``windows = "all"`` (the models' default): the pairs are cut into consecutive rows of ``L`` from
  the most recent backwards, so every interaction is a target once (the oldest row is
  left-padded), as in RecBole's prefix augmentation, except that a target early in a row sees
  fewer than ``L`` items of history.

A user with a single interaction has no pair (nothing precedes the item to predict it from) and
gives no training row; at scoring time that one item is the history, and a user with none gets a
history of padding only (the models then rank by what they learned for an empty prefix).

Scoring (:func:`last_window`): the evaluator's right-padded ``UserBatch.history`` (any width) is
turned into the same left-padded ``[B, L]`` window of the ``L`` most recent items on the device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from recbench.api import Interactions, ModelError

WINDOWS = ("last", "all")


def training_rows(x: Interactions, max_len: int, windows: str = "last"
                  ) -> dict[str, np.ndarray]:
    """``{"user": [R], "inputs": [R, L], "targets": [R, L]}`` (see the module doc); padding is
    ``n_items`` in both ``inputs`` and ``targets`` (a padded target takes no part in the loss)."""
    if x.timestamp is None:
        raise ModelError("sequential models need timestamps to order each user's items; this "
                         "training data has none (use a dataset with timestamps or positions)")
    ptr, items = x.sequences()
    n_pairs = np.maximum(np.diff(ptr) - 1, 0)  # (input, target) pairs per user
    per_row = np.minimum(n_pairs, max_len) if windows == "last" else n_pairs
    rows_per_user = -(-per_row // max_len)
    users = np.repeat(np.arange(x.n_users, dtype=np.int32), rows_per_user)
    if len(users) == 0:
        raise ModelError("sequential model: no user has two or more training interactions, so "
                         "there is no next item to learn from; check the split")
    # Row r of a user covers the pairs ending k = r * L pairs before the user's last one.
    first_row = np.repeat(np.cumsum(rows_per_user) - rows_per_user, rows_per_user)
    rank = np.arange(len(users)) - first_row  # 0 = the most recent row
    end = ptr[users + 1] - 1 - rank * max_len  # index of the row's last target in ``items``
    if windows == "last":
        start = np.maximum(end - per_row[users], ptr[users])
    else:
        start = np.maximum(end - max_len, ptr[users])  # index of the row's first input
    offsets = np.arange(max_len)[None, :] - max_len  # -L .. -1
    target_idx = end[:, None] + 1 + offsets  # the last column's target is items[end]
    valid = target_idx - 1 >= start[:, None]
    pad = x.n_items
    targets = np.where(valid, items[np.clip(target_idx, 0, len(items) - 1)], pad)
    inputs = np.where(valid, items[np.clip(target_idx - 1, 0, len(items) - 1)], pad)
    return {"user": users, "inputs": inputs.astype(np.int32), "targets": targets.astype(np.int32)}


def last_window(history: jax.Array, lengths: jax.Array, max_len: int, n_items: int) -> jax.Array:
    """The ``max_len`` most recent items of right-padded histories ``[B, W]``, left-padded with
    ``n_items``: ``[B, max_len]`` int32 (jit-friendly; works for any ``W``)."""
    pos = lengths[:, None].astype(jnp.int32) - max_len + jnp.arange(max_len, dtype=jnp.int32)
    width = history.shape[1]
    taken = jnp.take_along_axis(history, jnp.clip(pos, 0, width - 1), axis=1)
    return jnp.where(pos >= 0, taken, n_items).astype(jnp.int32)
