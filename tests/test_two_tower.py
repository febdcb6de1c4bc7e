"""two-tower: the text CNN carries a signal to items without interactions, the token table, and
bad input refused before training. (The contract kit runs in test_model_contract.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recbench.api import DataError, FeatureTable, ModelContext
from recbench.data import Interactions
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.testing.contract import _batch
from recbench_builtin.models.hybrid.text import OOV, PAD, tokenize
from recbench_builtin.models.hybrid.two_tower import TwoTower, TwoTowerConfig

# One small program shape for every fit here: compilation dominates these tests.
SMALL = TwoTowerConfig(factors=16, embed_dim=8, filters=16, epochs=8, batch_size=64,
                       learning_rate=0.05, text_min_df=1)
N_WARM, N_COLD, N_USERS = 48, 12, 40
BUILTIN = Registry.build(load_plugins(allow=set()))


def text_signal_data(seed: int = 0):
    """Two topics, named only in the item text; a user buys warm items of one topic. The one
    attribute is noise for warm items and the same value for every cold item, so among cold items
    only the text can tell the topics apart. Two cold items have an empty description."""
    rng = np.random.default_rng(seed)
    n_items = N_WARM + N_COLD
    topic = np.arange(n_items) % 2
    filler = np.array(["red", "blue", "mug", "lamp", "tin", "box"])
    text = [f"{filler[rng.integers(6)]} {['heart', 'star'][t]} {filler[rng.integers(6)]}"
            for t in topic]
    text[-2:] = ["", ""]  # cold items without text
    attr = rng.random(n_items).astype(np.float32)
    attr[N_WARM:] = 0.5
    user_topic = np.arange(N_USERS) % 2
    users, items = [], []
    for u in range(N_USERS):
        liked = np.flatnonzero(topic[:N_WARM] == user_topic[u])
        chosen = rng.choice(liked, 8, replace=False)
        users += [u] * 8
        items += chosen.tolist()
    train = Interactions(np.array(users), np.array(items), N_USERS, n_items,
                         timestamp=np.arange(len(users)))
    ctx = ModelContext(N_USERS, n_items, FeatureTable(attr[:, None], ("noise",)),
                       item_text=np.array(text, dtype=object))
    return train, ctx, topic, user_topic


def cold_scores(model, train) -> np.ndarray:
    fitted = model.fit(train, key=jax.random.key(0))
    scores = np.asarray(fitted.score(_batch(train, np.arange(N_USERS, dtype=np.int32))))
    assert np.isfinite(scores).all()
    return scores[:, N_WARM:N_WARM + N_COLD - 2]  # the cold items with text


def topic_hits(scores: np.ndarray, topic: np.ndarray, user_topic: np.ndarray) -> float:
    """Share of each user's top-3 cold items that are of the user's topic."""
    top = np.argsort(-scores, axis=1)[:, :3]
    return float((topic[N_WARM + top] == user_topic[:, None]).mean())


def test_text_cnn_carries_the_signal_to_cold_items():
    train, ctx, topic, user_topic = text_signal_data()
    scores = cold_scores(TwoTower(SMALL, ctx), train)
    # Cold items share their attribute value: the scores differ only through the text.
    assert np.ptp(scores, axis=1).min() > 1e-3
    assert topic_hits(scores, topic, user_topic) > 0.9
    # Collaborative filtering cannot rank them: item-knn gives every cold item the same score.
    spec = BUILTIN.model("item-knn")
    knn = spec.factory(spec.config(), ctx).fit(train, key=jax.random.key(0))
    knn_cold = np.asarray(knn.score(_batch(train, np.arange(N_USERS, dtype=np.int32))))
    assert np.ptp(knn_cold[:, N_WARM:], axis=1).max() == 0


def test_token_table_pads_marks_unknown_words_and_fits_the_longest_text():
    table = tokenize(np.array(["red heart mug", "blue heart", "", "heart heart heart heart "
                               "heart heart heart heart heart heart"], dtype=object),
                     vocab_size=1, min_df=1, max_tokens=8)
    assert table.words == 1 and table.rows >= 3
    assert table.ids.shape == (4, 8)  # the longest text is cut to max_tokens
    heart = table.ids[3, 0]
    assert heart > OOV
    assert table.ids[0].tolist() == [OOV, heart, OOV, PAD, PAD, PAD, PAD, PAD]
    assert table.empty == 1
    assert tokenize(np.array(["a", ""], dtype=object), 10, 2, 8) is None  # nothing frequent


def test_dataset_without_text_or_features_is_refused_naming_both_tables():
    train = Interactions(np.array([0, 1]), np.array([0, 1]), 2, 2)
    with pytest.raises(DataError, match="item_features.*item_text"):
        TwoTower(SMALL, ModelContext(2, 2)).fit(train, key=jax.random.key(0))
    # Text whose words are all too rare, and no attributes: nothing to build an item tower from.
    rare = ModelContext(2, 2, item_text=np.array(["mug", "lamp"], dtype=object))
    with pytest.raises(DataError, match="no word seen in at least text_min_df = 2"):
        TwoTower(TwoTowerConfig(), rare).fit(train, key=jax.random.key(0))


def test_spec_records_both_families():
    spec = BUILTIN.model("two-tower")
    assert spec.all_families == ("hybrid", "cnn") and spec.cold_items


@pytest.mark.parametrize("negatives", [6, 3])
def test_in_batch_softmax_matches_a_naive_loop(negatives):
    # Each row against the items of the first `negatives` rows: copies of its own item and
    # padding rows left out, its own logit counted once, log q subtracted from every logit.
    from recbench_builtin.models.hybrid.two_tower import _in_batch_softmax

    rng = np.random.default_rng(0)
    # Copies of items 0 and 2; row 4 (item 0) is past 3 negatives and its item among them.
    items = np.array([2, 0, 2, 1, 0, 3], np.int32)
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)  # the last row is padding
    p, v = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    log_q = np.log(rng.dirichlet(np.ones(4)))
    expected = []
    for r in range(6):
        own = p[r] @ v[r] - log_q[items[r]]
        others = [p[r] @ v[c] - log_q[items[c]] for c in range(negatives)
                  if mask[c] and items[c] != items[r]]
        expected.append(np.logaddexp.reduce([own, *others]) - own)
    got = _in_batch_softmax(*(jnp.asarray(a, jnp.float32) for a in (p, v)), jnp.asarray(items),
                           jnp.asarray(mask), jnp.asarray(log_q, jnp.float32), negatives)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_max_pool_gradient_goes_to_the_first_maximum():
    from recbench_builtin.models.hybrid.two_tower import _max_over_positions

    x = jnp.array([[[1.0, 5.0], [3.0, 5.0], [3.0, -1.0]]])  # [1 item, 3 positions, 2 channels]
    np.testing.assert_array_equal(_max_over_positions(x), [[3.0, 5.0]])
    grad = jax.grad(lambda x: (_max_over_positions(x) * jnp.array([2.0, 7.0])).sum())(x)
    # Channel 0: the maximum 3 first at position 1; channel 1: the tie at 0 and 1 goes to 0.
    np.testing.assert_array_equal(grad[0], [[0.0, 7.0], [2.0, 0.0], [0.0, 0.0]])
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.standard_normal((4, 6, 3)), jnp.float32)  # no ties: jnp.max's gradient
    np.testing.assert_array_equal(jax.grad(lambda y: _max_over_positions(y).sum())(y),
                                  jax.grad(lambda y: y.max(axis=1).sum())(y))


def test_token_conv1d_is_conv1d_over_the_embedded_tokens():
    # The two-tower text CNN multiplies the word table by each tap first; id 0 is a zero input.
    from recbench_builtin.models._conv import Conv1D, TokenConv1D

    table = jax.random.normal(jax.random.key(0), (9, 5))
    tokens = jnp.array([[3, 1, 8, 0, 0], [0, 0, 0, 0, 0], [2, 2, 7, 5, 4]], jnp.int32)
    embedded = jnp.where((tokens > 0)[..., None], table[tokens], 0.0)
    for width, before in [(1, 0), (3, 1), (3, 2), (4, 3)]:
        dense, token = Conv1D(4, width, before), TokenConv1D(4, width, before)
        params = dense.init(jax.random.key(1), embedded)
        assert jax.tree.all(jax.tree.map(
            lambda a, b: bool((a == b).all()), params, token.init(jax.random.key(1), table,
                                                                  tokens)))
        params = {"params": {**params["params"], "bias": jnp.arange(4.0)}}
        np.testing.assert_allclose(token.apply(params, table, tokens),
                                   dense.apply(params, embedded), rtol=1e-5, atol=1e-5)
