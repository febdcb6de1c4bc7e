"""Sharded evaluation and data-parallel training: four host devices (tests/conftest.py) give the
same metrics and, up to float rounding of the summed gradients, the same trained model as one."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from recbench import Interactions
from recbench.errors import ConfigError
from recbench.evaluate import evaluate_ranking
from recbench.sharding import DEVICES_VAR, data_mesh
from recbench.timing import CompileClock
from recbench_builtin.metrics import METRICS
from recbench_builtin.models.factorization import BPRConfig, BPRModel, EmbeddingFitted
from recbench_builtin.models.linear import EASEConfig, EASEModel

RANKING = [m for m in METRICS if m.task == "ranking"]


def _split(n_users: int = 37, n_items: int = 61, seed: int = 0
           ) -> tuple[Interactions, Interactions]:
    """Each user's items drawn without replacement: the first ones train, 1-3 more test. 37
    users: batches of 8 leave a padded last batch, and the batch of 37 is not a multiple of 4."""
    rng = np.random.default_rng(seed)
    tr, te = ([], []), ([], [])
    for u in range(n_users):
        n_train, n_test = rng.integers(3, 20), rng.integers(0 if u % 9 == 0 else 1, 4)
        items = rng.choice(n_items, n_train + n_test, replace=False)
        for part, chosen in ((tr, items[:n_train]), (te, items[n_train:])):
            part[0].append(np.full(len(chosen), u))
            part[1].append(chosen)
    return tuple(Interactions(np.concatenate(u), np.concatenate(i), n_users, n_items)
                 for u, i in (tr, te))


@pytest.fixture
def one_device(monkeypatch):
    def use_one():
        monkeypatch.setenv(DEVICES_VAR, "1")
        assert data_mesh() is None
    return use_one


def _evaluate(fitted, train, test, batch_size):
    return evaluate_ranking(fitted, train=train, test=test, metrics=RANKING, ks=(5,),
                            batch_size=batch_size)


def _same_metrics(fitted, one_device, batch_sizes=(8,)):
    train, test = _split()
    assert data_mesh() is not None and data_mesh().size == 4  # tests/conftest.py's 4 devices
    sharded = [_evaluate(fitted, train, test, bs) for bs in batch_sizes]
    one_device()
    single = [_evaluate(fitted, train, test, bs) for bs in batch_sizes]
    for a, b in zip(sharded, single):
        assert a.metrics.keys() == b.metrics.keys()
        for label in a.metrics:
            assert abs(a.metrics[label] - b.metrics[label]) <= 1e-6, label
        for label in a.per_user:
            np.testing.assert_allclose(a.per_user[label], b.per_user[label], atol=1e-6)
        assert a.counts["batch_size"] % 4 == 0  # rounded up to the device count


def _embeddings(seed: int) -> EmbeddingFitted:
    rng = np.random.default_rng(seed)
    return EmbeddingFitted(jax.numpy.asarray(rng.standard_normal((37, 16)), jax.numpy.float32),
                           jax.numpy.asarray(rng.standard_normal((61, 16)), jax.numpy.float32))


def test_factor_model_metrics_same_on_four_devices_and_one(one_device):
    _same_metrics(_embeddings(1), one_device)


def test_ease_metrics_same_on_four_devices_and_one(one_device):
    train, _ = _split()
    fitted = EASEModel(EASEConfig(l2=5.0)).fit(train, key=jax.random.key(0))
    _same_metrics(fitted, one_device)


def test_sharded_evaluation_compiles_once():
    train, test = _split()
    fitted = _embeddings(2)
    _evaluate(fitted, train, test, 8)
    with CompileClock() as clock:
        _evaluate(fitted, *_split(seed=3), 8)  # another split of the same size class
    assert clock.compiles == 0


def test_bpr_data_parallel_matches_one_device(one_device):
    train, _ = _split()
    cfg = BPRConfig(factors=8, epochs=2, batch_size=32, learning_rate=0.05, negative_rounds=0)
    key = jax.random.key(7)
    sharded = BPRModel(cfg, None).fit(train, key=key)
    assert len(sharded.user_emb.sharding.device_set) == 4  # trained on every device
    one_device()
    single = BPRModel(cfg, None).fit(train, key=key)
    np.testing.assert_allclose(np.asarray(sharded.user_emb), np.asarray(single.user_emb),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(sharded.item_emb), np.asarray(single.item_emb),
                               rtol=1e-4, atol=1e-5)


def test_device_count_setting_is_checked(monkeypatch):
    monkeypatch.setenv(DEVICES_VAR, "9")
    with pytest.raises(ConfigError, match="RECBENCH_DEVICES='9'"):
        data_mesh()
