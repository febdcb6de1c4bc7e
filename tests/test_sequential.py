"""The sequential models' shared pieces and bad input: training rows and scoring windows (order,
ties, truncation, single interactions), the three losses, the timestamp requirement, a diverging
fit named by its epoch, and the synthetic generator's Markov signal, which the sequential models
recover and the non-sequential ones cannot (and without which they have no edge)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from recbench.api import (ConfigError, Interactions, ModelContext, ModelError, derive_key,
                          evaluate_ranking, tiny_dataset)
from recbench.specs import missing_requirements
from recbench.testing.contract import _batch, _splits
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate
from recbench_builtin.metrics import NDCG
from recbench_builtin.models.sequential.histories import last_window, training_rows
from recbench_builtin.models.sequential.losses import next_item_loss
from recbench_builtin.models.sequential.rnn import RNNConfig
from recbench_builtin.models.sequential.sasrec import SASRecConfig
from recbench_builtin.models.sequential import training
from recbench_builtin.models.sequential.training import SequentialModel
from recbench_builtin.splitting.protocols import LeaveLastOutConfig, leave_last_out

from test_model_contract import TEST_CONFIGS

SEQUENTIAL = ("sasrec", "gru4rec", "lstm", "caser")
PAD = 10  # n_items of the hand-made data below


def _x(user, item, timestamp) -> Interactions:
    return Interactions(np.array(user), np.array(item), 4, PAD, timestamp=np.array(timestamp))


def test_rows_are_time_ordered_stable_on_ties_and_truncated_to_the_most_recent():
    # User 0: items 1..5, item 1 stamped last; items 3 and 4 tie (row order decides: 3 then 4).
    # User 1: one interaction (no pair, no row); user 2: two items; user 3: none.
    x = _x([0, 0, 0, 0, 0, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8], [9, 1, 2, 2, 4, 0, 5, 3])
    rows = training_rows(x, 3, "last")
    assert rows["user"].tolist() == [0, 2]
    # User 0's sequence is 2 3 4 5 1: the last three pairs, most recent last.
    assert rows["inputs"].tolist() == [[3, 4, 5], [PAD, PAD, 8]]
    assert rows["targets"].tolist() == [[4, 5, 1], [PAD, PAD, 7]]
    every = training_rows(x, 3, "all")  # every pair once, in rows of 3 from the most recent
    assert every["user"].tolist() == [0, 0, 2]
    assert every["inputs"].tolist() == [[3, 4, 5], [PAD, PAD, 2], [PAD, PAD, 8]]
    assert every["targets"].tolist() == [[4, 5, 1], [PAD, PAD, 3], [PAD, PAD, 7]]


def test_scoring_window_is_the_training_layout_of_the_most_recent_items():
    history = jnp.array([[2, 3, 4, 5, 1, PAD], [6, PAD, PAD, PAD, PAD, PAD],
                         [PAD] * 6])  # right-padded, as UserBatch
    window = last_window(history, jnp.array([5, 1, 0]), 3, PAD)
    assert window.tolist() == [[4, 5, 1], [PAD, PAD, 6], [PAD, PAD, PAD]]
    assert last_window(history[:, :2], jnp.array([2, 1, 0]), 3, PAD).tolist()[0] == [PAD, 2, 3]


def test_no_user_with_two_interactions_is_refused():
    with pytest.raises(ModelError, match="no user has two or more training interactions"):
        training_rows(_x([0, 1], [1, 2], [0, 0]), 3)


def test_losses_softmax_exact_sampled_masks_collisions_bce_finite():
    rng = np.random.default_rng(0)
    hidden = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    table = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    targets = jnp.array([[6, 1, 2], [3, 4, 6]])  # 6 = padding
    row_mask = jnp.array([1.0, 0.0])  # the second row is padding: only 1 and 2 count
    args = dict(row_mask=row_mask, users=jnp.array([0, 1]), negatives=5)
    key = jax.random.key(0)
    loss = jax.jit(next_item_loss, static_argnums=0, static_argnames="negatives")
    full = loss("softmax", hidden, targets, table, None, key, **args)
    logits = hidden[0, 1:] @ table.T
    want = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([1, 2])).mean()
    assert float(full) == pytest.approx(float(want), rel=1e-5)
    # All 6 items as negatives: the sampled loss can only differ by the masked duplicates.
    sampled = loss("sampled", hidden, targets, table, None, key, **{**args,
                                                                              "negatives": 4000})
    assert 0 < float(sampled) < float(full) + 10.0
    positives = {"bits": jnp.zeros((2, 1), jnp.uint32)}
    bce = loss("bce", hidden, targets, table, None, key, **args, positives=positives)
    assert np.isfinite(float(bce)) and float(bce) > 0


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_declared_sequential_and_refused_without_timestamps(registry, name):
    spec = registry.model(name)
    assert "timestamps" in spec.requires and "sequential" in spec.all_families
    ds = tiny_dataset()
    x = ds.interactions
    bare = Interactions(x.user, x.item, x.n_users, x.n_items)
    assert missing_requirements(spec, ds.replace(interactions=bare)) == ["timestamps"]
    model = spec.factory(spec.config(), ModelContext(x.n_users, x.n_items))
    with pytest.raises(ModelError, match="need timestamps"):
        model.fit(bare, key=derive_key(0))


@pytest.mark.parametrize("width,before", [(1, 0), (3, 2), (3, 1), (4, 3)])
def test_conv1d_draws_and_computes_what_flax_conv_does(width, before):
    # Caser uses Conv1D in place of nn.Conv (speed inside the training loop), and the two-tower
    # text CNN its parameters; under nn.Conv's module name it must start from the same values
    # and give its output.
    from flax import linen as nn
    from recbench_builtin.models._conv import Conv1D

    x = jax.random.normal(jax.random.key(0), (3, 7, 5))
    ours = Conv1D(4, width, before, name="Conv_0")
    theirs = nn.Conv(4, (width,), padding=[(before, width - 1 - before)], name="Conv_0")
    p_ours = ours.init(jax.random.key(1), x)
    p_theirs = theirs.init(jax.random.key(1), x)
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(p_ours["params"][name], p_theirs["params"][name])
    bias = {"params": {**p_theirs["params"], "bias": jnp.arange(4.0)}}
    np.testing.assert_allclose(ours.apply(bias, x), theirs.apply(bias, x), rtol=1e-5, atol=1e-5)


def test_caser_and_the_text_cnn_keep_the_names_their_nn_conv_layers_had():
    # The names fix the initial values (Flax derives each parameter's key from its path) and the
    # layout of saved models.
    from recbench_builtin.models.hybrid.two_tower import _ItemTower
    from recbench_builtin.models.sequential.caser import CaserConfig

    cfg = CaserConfig(dim=8, max_len=6, window=3)
    inputs, users = jnp.zeros((2, 6), jnp.int32), jnp.zeros(2, jnp.int32)
    params = cfg.network(4, 10).init(jax.random.key(0), inputs, users, deterministic=True)["params"]
    for h in range(1, 4):
        assert params[f"Conv_{h - 1}"]["kernel"].shape == (h, 8, cfg.n_h)
    tower = _ItemTower(4, 12, 6, 5, 3).init(jax.random.key(0), jnp.zeros((2, 1)),
                                           jnp.ones((2, 7), jnp.int32))["params"]
    assert tower["_Conv1D_0"]["kernel"].shape == (3, 6, 5)
    assert tower["Embed_0"]["embedding"].shape == (12, 6)


def test_a_nan_loss_fails_the_fit_naming_the_epoch(monkeypatch):
    # NaN parameters make a NaN loss in the first epoch (the contract's data and test config, so
    # the compiled epoch is shared with the contract test).
    init = training._init
    monkeypatch.setattr(training, "_init",
                        lambda *a: jax.tree.map(lambda p: p * jnp.float32(jnp.nan), init(*a)))
    (train, valid), _ = _splits(tiny_dataset().interactions)
    model = SequentialModel(RNNConfig(**TEST_CONFIGS["gru4rec"]),
                            ModelContext(train.n_users, train.n_items))
    with pytest.raises(ModelError, match=r"training diverged: the mean loss of epoch 1 is nan"):
        model.fit(train, valid=valid, key=derive_key(0))


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_bfloat16_compute_trains_in_bfloat16_and_scores_in_float32(registry, name):
    # Under the suite's strict dtype promotion: any float32 op left in the network would raise.
    (train, valid), _ = _splits(tiny_dataset().interactions)
    spec = registry.model(name)
    cfg = spec.config(**{**TEST_CONFIGS[name], "epochs": 2, "compute_dtype": "bfloat16"})
    fitted = spec.factory(cfg, ModelContext(train.n_users, train.n_items)).fit(
        train, valid=valid, key=derive_key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(fitted.params))
    batch = _batch(train, np.arange(train.n_users))
    scores = fitted.score(batch)
    assert scores.dtype == jnp.float32 and bool(jnp.isfinite(scores).all())
    net = cfg.network(train.n_users, train.n_items)
    text = str(jax.make_jaxpr(lambda p: training._score(net, p, batch.users, jnp.zeros(
        (batch.users.shape[0], cfg.max_len), jnp.int32)))(fitted.params))
    assert "bf16[" in text and "preferred_element_type=float32" in text


def test_a_config_key_added_later_keeps_earlier_trial_identities_at_its_default():
    from recbench.config import identity_dict

    assert "compute_dtype" not in identity_dict(SASRecConfig())
    assert identity_dict(SASRecConfig(compute_dtype="bfloat16"))["compute_dtype"] == "bfloat16"
    with pytest.raises(ConfigError, match="compute_dtype must be one of"):
        SASRecConfig(compute_dtype="float16")


def _ndcg(model, split) -> float:
    """Test NDCG@10 with the full prefix (train + valid) as history, as the protocol
    ``history = "train+valid"`` scores a sequential model."""
    fitted = model.fit(split.train, valid=split.valid, key=derive_key(0, "seq-test"))
    prefix = Interactions.concat(split.train, split.valid)
    return evaluate_ranking(fitted, train=prefix, test=split.test, metrics=[NDCG],
                            ks=(10,)).metrics["ndcg@10"]


def _markov_case(registry, markov: bool) -> tuple[dict[str, float], dict[str, float]]:
    """(sequential, non-sequential) test NDCG@10 on synthetic data with only the Markov signal
    (``markov``) or only the collaborative one."""
    cfg = SyntheticConfig(n_users=300, n_items=150, mean_per_user=10, popularity=0.5,
                          collaborative=0.0 if markov else 2.0, sequential=0.9 if markov else 0.0)
    ds = generate(cfg)
    split = leave_last_out(ds.interactions, LeaveLastOutConfig(), np.random.default_rng(0))
    ctx = ModelContext(ds.interactions.n_users, ds.interactions.n_items)
    plain = {name: _ndcg(registry.model(name).factory(
        registry.model(name).config(), ctx), split) for name in ("most-popular", "ease")}
    # One row per user (windows "last"), so both cases have the same shapes.
    # A high learning rate: the planted successors are learnt in under 15 epochs.
    light = {"epochs": 15, "patience": 3, "max_len": 8, "dim": 16, "batch_size": 32,
             "learning_rate": 0.02, "windows": "last"}
    sequential = {"sasrec": _ndcg(SequentialModel(SASRecConfig(**light, blocks=1), ctx), split),
                  "gru4rec": _ndcg(SequentialModel(RNNConfig(**light), ctx), split)}
    return sequential, plain


def test_sequential_models_recover_the_markov_signal_and_only_it(registry):
    # Both signals in one test, so the second case reuses the programs the first compiled
    # (as two test cases, parallel workers may each compile them).
    sequential, plain = _markov_case(registry, markov=True)
    # 0.9 of the next items follow 4 planted successors of the last one.
    assert min(sequential.values()) > 1.8 * max(plain.values()), ("markov", sequential, plain)
    sequential, plain = _markov_case(registry, markov=False)
    assert max(sequential.values()) < max(plain.values()) + 0.02, ("none", sequential, plain)
