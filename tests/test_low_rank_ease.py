"""Low-rank EASE: at full rank it is EASE; at any rank an item never votes for itself."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from recbench import UserBatch
from recbench.evaluate import padded_lists
from recbench.testing import tiny_dataset
from recbench_builtin.models.linear import LowRankEASEConfig, LowRankEASEModel


def _batch(x, users):
    ptr, items = x.sequences()
    h, n = padded_lists(ptr, items, users, pad=x.n_items, width=int(x.user_counts.max()))
    return UserBatch(jnp.asarray(users), jnp.asarray(h), jnp.asarray(n),
                     jnp.ones(len(users), bool), x.n_items)


def test_full_rank_equals_ease_and_low_rank_has_zero_diagonal():
    x = tiny_dataset(n_users=60, n_items=40).interactions
    batch = _batch(x, np.arange(16, dtype=np.int32))
    key = jax.random.key(0)
    # EASE in float64 numpy: B = I - P / diag(P), P = (X^T X + l2 I)^-1.
    m = x.csr.toarray() > 0
    p = np.linalg.inv(m.T.astype(np.float64) @ m + 2.0 * np.eye(40))
    weights = np.eye(40) - p / np.diagonal(p)[None, :]
    exact = m[:16] @ weights
    full = LowRankEASEModel(LowRankEASEConfig(l2=2.0, rank=40)).fit(x, key=key)
    np.testing.assert_allclose(np.asarray(full.score(batch)), exact, atol=1e-4)
    low = LowRankEASEModel(LowRankEASEConfig(l2=2.0, rank=6)).fit(x, key=key)
    assert np.abs(np.asarray(low.score(batch)) - exact).max() > 1e-2  # an approximation
    # One-item histories: item i's score for itself is B_ii = 0.
    one = UserBatch(jnp.zeros(40, jnp.int32), jnp.arange(40, dtype=jnp.int32)[:, None],
                    jnp.ones(40, jnp.int32), jnp.ones(40, bool), 40)
    np.testing.assert_allclose(np.diagonal(np.asarray(low.score(one))), 0.0, atol=1e-6)
