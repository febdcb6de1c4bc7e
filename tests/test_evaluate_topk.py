"""Top-k selection against a numpy reference (heavy ties, signed zeros, both selection paths),
and the training validator against the evaluator."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbench import Interactions
from recbench.evaluate import _TOPK_MIN_ITEMS_PER_K, _top_k, evaluate_ranking, metric_label
from recbench.errors import ModelError
from recbench.train import ranking_validator


def reference(x: np.ndarray, k: int) -> np.ndarray:
    # Descending score, ties to the lower index: lexsort's last key is the primary one.
    return np.stack([np.lexsort((np.arange(len(row)), -row))[:k] for row in x])


@pytest.mark.parametrize("n_items", [50, _TOPK_MIN_ITEMS_PER_K * 5 + 7])  # lax.top_k / two-stage
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), levels=st.integers(1, 6), k=st.integers(1, 5))
def test_top_k_matches_reference_with_ties(n_items, seed, levels, k):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, (4, n_items)).astype(np.float32)
    x[:, rng.integers(0, n_items, 3)] = -np.inf  # masked items
    got = np.asarray(_top_k(jnp.asarray(x), k))
    np.testing.assert_array_equal(got, reference(x, k))


# ---------------------------------------------------------------- validator = evaluator


@jax.jit
def _grid_scores(user_emb, item_emb, users):
    # Scores on a coarse grid: many exact ties, so the tie rule is exercised too.
    return jnp.round(4 * user_emb[users] @ item_emb.T) / 4


@dataclass(frozen=True)
class _GridMF:
    user_emb: jax.Array
    item_emb: jax.Array

    def score(self, batch):
        return _grid_scores(self.user_emb, self.item_emb, batch.users)


def _train_valid(n_users: int, n_items: int, seed: int) -> tuple[Interactions, Interactions]:
    rng = np.random.default_rng(seed)
    users, items, held = [], [], []
    for u in range(n_users):
        picked = rng.choice(n_items - 3, rng.integers(2, 30), replace=False)  # 3 items never seen
        users.append(np.full(len(picked), u))
        items.append(picked)
        held.append(rng.random(len(picked)) < (0.3 if u % 7 else 0.0))  # some users: no valid
    u, i, h = np.concatenate(users), np.concatenate(items), np.concatenate(held)
    return (Interactions(u[~h], i[~h], n_users, n_items),
            Interactions(u[h], i[h], n_users, n_items))


@pytest.mark.parametrize("batch_size", [16, 256])  # several padded batches / one
def test_ranking_validator_equals_evaluate_ranking(registry, batch_size):
    """Validation ranks with the evaluator's function: every digit of the metric agrees, though
    the two batch the users differently (power-of-two vs exact batch size)."""
    train, valid = _train_valid(70, 90, seed=1)
    rng = np.random.default_rng(2)
    model = _GridMF(jnp.asarray(rng.standard_normal((70, 4)), jnp.float32),
                    jnp.asarray(rng.standard_normal((90, 4)), jnp.float32))
    for name in ("ndcg", "auc"):  # auc needs the full ranks
        metric = registry.metric(name)
        validate = ranking_validator(lambda params: params, train, valid, metric=metric, k=10,
                                     batch_size=batch_size)
        label = metric_label(metric, 10 if metric.uses_k else None)
        want = evaluate_ranking(model, train=train, test=valid, metrics=[metric], ks=(10,),
                                batch_size=batch_size).metrics[label]
        assert 0 < want < 1 and validate(model) == want, label


def test_ranking_validator_ranks_cold_validation_items_as_the_cold_test_is_ranked(registry):
    """candidates = "cold": the validation items without training interactions, ranked among
    themselves, the evaluator's ``candidates`` mask; all digits agree."""
    train, valid = _train_valid(70, 90, seed=1)
    held = np.isin(train.item, np.arange(12))  # items 0..11 lose their training interactions
    sub = lambda x, m: Interactions(x.user[m], x.item[m], 70, 90)  # noqa: E731
    train, valid = sub(train, ~held), Interactions.concat(valid, sub(train, held))
    rng = np.random.default_rng(2)
    model = _GridMF(jnp.asarray(rng.standard_normal((70, 4)), jnp.float32),
                    jnp.asarray(rng.standard_normal((90, 4)), jnp.float32))
    cold = np.zeros(90, bool)
    cold[valid.item] = True
    cold &= train.item_counts == 0
    assert cold.sum() == 12
    for name in ("ndcg", "auc"):  # auc reads the number of candidates
        metric = registry.metric(name)
        label = metric_label(metric, 10 if metric.uses_k else None)
        want = evaluate_ranking(model, train=train, test=valid, metrics=[metric], ks=(10,),
                                candidates=cold).metrics[label]
        got = ranking_validator(lambda params: params, train, valid, metric=metric, k=10,
                                candidates="cold")(model)
        every = ranking_validator(lambda params: params, train, valid, metric=metric, k=10)(model)
        assert got == want and got != every, label
    with pytest.raises(ModelError, match="no validation item is cold"):
        ranking_validator(lambda params: params, *_train_valid(70, 90, seed=1), metric=metric,
                          k=10, candidates="cold")


@dataclass
class _HistoryProbe:
    """Scores from a user's history (when ``reads``) or its id; records, per batch, whether the
    history had been built before ``score`` asked for it."""

    reads: bool
    seen: list

    def score(self, batch):
        self.seen.append(batch.history_read)
        b, n = batch.users.shape[0], batch.n_items
        if not self.reads:
            return jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32), (b, n))

        @jax.jit
        def scores(weights):  # the history first read while JAX traces: still concrete after
            seen = jnp.zeros((b, n + 1), jnp.float32).at[
                jnp.arange(b)[:, None], batch.history].add(1)
            return seen[:, :-1] @ weights

        out = scores(jnp.asarray(np.random.default_rng(1).random((n, n)), jnp.float32))
        assert isinstance(batch.lengths, jax.Array) and int(batch.lengths.max()) >= 0
        return out


def test_the_history_is_built_only_for_a_model_that_reads_it():
    from recbench_builtin.metrics import METRICS

    rng = np.random.default_rng(0)
    pairs = rng.choice(50 * 30, 600, replace=False)  # distinct (user, item) pairs
    x = Interactions(pairs // 30, pairs % 30, 50, 30)
    train, test = x.subset(np.arange(len(x)) % 5 != 0), x.subset(np.arange(len(x)) % 5 == 0)
    ndcg = [m for m in METRICS if m.name == "ndcg"]
    ignores = _HistoryProbe(False, [])
    evaluate_ranking(ignores, train=train, test=test, metrics=ndcg, ks=(5,), batch_size=16)
    assert len(ignores.seen) > 2 and not any(ignores.seen)  # never built
    reads = _HistoryProbe(True, [])
    lazy = evaluate_ranking(reads, train=train, test=test, metrics=ndcg, ks=(5,), batch_size=16)
    assert reads.seen[0] is False and all(reads.seen[1:])  # on demand, then ahead of time
    again = evaluate_ranking(_HistoryProbe(True, []), train=train, test=test, metrics=ndcg,
                             ks=(5,), batch_size=64)  # one batch: built on demand only
    np.testing.assert_allclose(lazy.per_user["ndcg@5"], again.per_user["ndcg@5"], atol=1e-6)
