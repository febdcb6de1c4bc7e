"""NeuMF's architecture choices (RecBole's), its hashed dropout and its training loss."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from recbench_builtin.models.neural_cf import (
    NeuMF,
    NeuMFConfig,
    _dropout,
    _NeuMFLoss,
)

from recbench.api import csr_positives, sample_negatives
from recbench.testing import tiny_dataset

N_USERS, N_ITEMS = 6, 9


def _net(**overrides) -> NeuMF:
    cfg = NeuMFConfig(**{"gmf_factors": 4, "mlp_factors": 3, "layers": (5, 2), **overrides})
    return NeuMF(N_USERS, N_ITEMS, cfg, rngs=nnx.Rngs(params=jax.random.key(0)))


def test_dropout_rate_scale_and_seeding():
    h = jnp.ones((200, 500))
    seed = jnp.array([1, 2], jnp.uint32)
    out = np.asarray(_dropout(h, seed, 0.1))
    kept = out != 0
    assert abs(1 - kept.mean() - 0.1) < 0.005  # 100k draws: std ~0.001
    assert np.allclose(out[kept], 1 / 0.9)
    assert np.array_equal(out, np.asarray(_dropout(h, seed, 0.1)))
    other = np.asarray(_dropout(h, jnp.array([1, 3], jnp.uint32), 0.1)) != 0
    assert 0.15 < (kept != other).mean() < 0.21  # independent masks disagree on ~2 * 0.9 * 0.1
    # no structure along rows or columns
    assert np.abs(kept.mean(axis=0) - 0.9).max() < 0.1 and np.abs(kept.mean(axis=1) - 0.9).max() < 0.1


def test_dense_layers_start_at_torch_linear_default():
    net = _net(layers=(64, 32))
    for layer in [*net.mlp, net.out]:
        fan_in = layer.kernel.shape[0]
        bound = 1 / math.sqrt(fan_in)
        for w in (np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])):
            assert np.abs(w).max() <= bound
        k = np.asarray(layer.kernel[...])
        assert abs(k.std() - bound / math.sqrt(3)) < 0.15 * bound  # uniform, not lecun normal
        assert np.abs(np.asarray(layer.bias[...])).max() > 0  # biases are drawn too, not zero
    emb = np.asarray(net.user.embedding[...])
    assert abs(emb.std() - 0.01) < 0.002


def test_dropout_is_applied_before_each_dense_layer_only():
    # One dense layer: with dropout on its input only (RecBole's MLPLayers), zero MLP embeddings
    # leave nothing to drop, so the training-mode logits equal the inference logits; dropout
    # after the layer (on relu(bias) != 0) would change them.
    net = _net(layers=(5,), dropout=0.5)
    g = net.gmf_factors
    for table in (net.user, net.item):
        table.embedding[...] = table.embedding[...].at[:, g:].set(0.0)
    net.mlp[0].bias[...] = jnp.abs(net.mlp[0].bias[...]) + 0.1
    u, i = jnp.arange(N_USERS), jnp.arange(N_USERS)
    assert np.allclose(net(u, i, key=jax.random.key(3)), net(u, i))
    dense = _net(layers=(5,), dropout=0.5)
    assert not np.allclose(dense(u, i, key=jax.random.key(3)), dense(u, i))


@pytest.mark.parametrize("layers", [(4,), (5, 3, 2)])
def test_full_ranking_scores_match_the_pairwise_network(layers):
    net = _net(layers=layers)
    users = jnp.arange(N_USERS)
    scores = np.asarray(net.score_all(users))
    pairs = np.asarray(net(jnp.repeat(users, N_ITEMS), jnp.tile(jnp.arange(N_ITEMS), N_USERS)))
    assert scores.shape == (N_USERS, N_ITEMS)
    assert np.allclose(scores.ravel(), pairs, atol=1e-6)


def test_loss_is_mean_bce_over_positives_and_their_negatives():
    ds = tiny_dataset()
    x = ds.interactions
    net = NeuMF(x.n_users, x.n_items, NeuMFConfig(gmf_factors=4, mlp_factors=3, layers=(5,),
                                                  dropout=0.0),
                rngs=nnx.Rngs(params=jax.random.key(0)))
    graphdef, params = nnx.split(net)
    aux = csr_positives(x)
    loss = _NeuMFLoss(graphdef, x.n_items, negatives=2, rounds=1, reg=0.0)
    u, i = jnp.asarray(x.user[:8]), jnp.asarray(x.item[:8])
    mask = jnp.array([1.0] * 6 + [0.0] * 2)
    batch = {"user": u, "item": i, "label": jnp.ones(8), "mask": mask}
    key = jax.random.key(5)

    @jax.jit
    def reference(params, key):  # the same negatives (same key), pairs scored one by one
        net = nnx.merge(graphdef, params)
        j = sample_negatives(jax.random.split(key)[0], u, x.n_items, aux, shape=(2,), rounds=1)
        bce = optax.sigmoid_binary_cross_entropy
        return jnp.concatenate([bce(net(u, i), jnp.ones(8))[:6],
                                bce(net(jnp.repeat(u, 2), j.ravel()),
                                    jnp.zeros(16)).reshape(8, 2)[:6].ravel()]).mean()

    got = jax.jit(loss)(params, batch, key, aux)
    assert np.isclose(float(got), float(reference(params, key)), rtol=1e-5)
    # equal settings give an equal, hashable loss: a refit reuses the compiled epoch
    again = _NeuMFLoss(nnx.split(net)[0], x.n_items, negatives=2, rounds=1, reg=0.0)
    assert again == loss and hash(again) == hash(loss)
