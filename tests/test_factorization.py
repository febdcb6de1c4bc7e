"""Gradient-trained models (bpr, biased-mf, svdpp, neumf) and the shared loop in recbench.train."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from recbench import Interactions
from recbench.config import from_mapping
from recbench.errors import ConfigError, ModelError
from recbench.evaluate import evaluate_ranking
from recbench.random import derive_rng
from recbench.specs import ModelContext
from recbench_builtin.splitting.protocols import RatioConfig, ratio
from recbench.train import (
    bucket_size,
    csr_positives,
    epoch_batches,
    fit_loop,
    is_positive,
    masked_mean,
    sample_negatives,
    shuffle,
)
from recbench_builtin.datasets.synthetic import SyntheticConfig, generate

FAST_BPR = {"factors": 16, "epochs": 40, "batch_size": 512, "learning_rate": 0.01,
            "patience": 5}
FAST_MF = {"factors": 8, "epochs": 30, "batch_size": 512, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def split():
    # A planted rank-4 signal strong enough for a 16-factor model to beat popularity clearly.
    ds = generate(SyntheticConfig(n_users=300, n_items=100, n_factors=4, mean_per_user=20, seed=3))
    return ratio(ds.interactions, RatioConfig((0.8, 0.1, 0.1)), derive_rng(0, "split"))


def _model(registry, name, overrides=None, task="ranking", n_users=300, n_items=100):
    spec = registry.model(name)
    cfg = from_mapping(spec.config, overrides or {}, where=f"model {name!r} config")
    return spec.factory(cfg, ModelContext(n_users, n_items, task=task))


def _scores(fitted, users):
    from recbench import UserBatch

    users = jnp.asarray(users, jnp.int32)
    hist = jnp.zeros((len(users), 1), jnp.int32)
    batch = UserBatch(users, hist, jnp.zeros(len(users), jnp.int32),
                      jnp.ones(len(users), bool), 0)
    return np.asarray(fitted.score(batch))


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize("name,key,value,fragment", [
    ("bpr", "factors", -4, "factors must be >= 1 (valid range: [1, inf)), got -4"),
    ("bpr", "reg", -0.1, "reg must be >= 0 (valid range: [0, inf)), got -0.1"),
    ("bpr", "learning_rate", 0.0, "learning_rate must be > 0 (valid range: (0, inf))"),
    ("bpr", "patience", 0, "patience must be >= 1"),
    ("biased-mf", "factors", 0, "valid range: [1, inf)"),
    ("biased-mf", "reg", -1.0, "reg must be >= 0"),
    ("svdpp", "epochs", 0, "epochs must be >= 1"),
    ("neumf", "dropout", 1.0, "dropout must be in [0, 1)"),
    ("neumf", "layers", [], "layers must list at least one width"),
    ("neumf", "negatives", 0, "negatives must be >= 1"),
])
def test_config_rejects_out_of_range(registry, name, key, value, fragment):
    spec = registry.model(name)
    with pytest.raises(ConfigError) as err:
        from_mapping(spec.config, {key: value}, where=f"model {name!r} config")
    assert fragment in str(err.value)


# ---------------------------------------------------------------- train.py helpers


def test_epoch_batches_cover_every_row_once():
    index, mask = jax.jit(epoch_batches, static_argnums=(0, 1))(10, 4, jax.random.key(0))
    assert index.shape == mask.shape == (3, 4)
    real = np.asarray(index)[np.asarray(mask) > 0]
    assert sorted(real.tolist()) == list(range(10))
    assert np.asarray(mask).sum() == 10


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 4097])
def test_shuffle_is_a_permutation(n):
    perm = jax.jit(shuffle, static_argnums=1)
    p = np.asarray(perm(jax.random.key(n), n))
    assert p.dtype == np.int32 and np.array_equal(np.sort(p), np.arange(n))
    if n >= 64:
        assert not np.array_equal(p, np.arange(n))
        assert not np.array_equal(p, np.asarray(perm(jax.random.key(n + 1), n)))


@pytest.mark.parametrize("bitset_bytes", [64 << 20, 0])  # bit matrix, then CSR bisection
def test_is_positive_and_negatives(bitset_bytes):
    rng = np.random.default_rng(0)
    x = Interactions(rng.integers(0, 30, 500), rng.integers(0, 70, 500), 30, 70)
    pos = csr_positives(x, bitset_max_bytes=bitset_bytes)
    assert ("bits" in pos) == (bitset_bytes > 0)
    users, items = np.divmod(np.arange(30 * 70), 70)
    check = jax.jit(is_positive)
    got = np.asarray(check(pos, jnp.asarray(users), jnp.asarray(items)))
    assert np.array_equal(got, np.asarray(x.csr.todense()).ravel() > 0)
    u = jnp.asarray(rng.integers(0, 30, 256), jnp.int32)
    draw = jax.jit(sample_negatives, static_argnames=("n_items", "shape", "rounds"))
    neg = draw(jax.random.key(1), u, n_items=70, positives=pos, shape=(3,), rounds=5)
    assert neg.shape == (256, 3)
    clash = np.asarray(check(pos, jnp.broadcast_to(u[:, None], neg.shape), neg))
    assert clash.mean() < 0.01  # ~20% density: 5 redraws leave ~0.03% collisions


def _quadratic_loss(params, batch, key, aux):
    return masked_mean((params["w"] * batch["x"] - batch["y"]) ** 2, batch["mask"])


def test_fit_loop_trains_and_times():
    x = np.linspace(-1, 1, 50, dtype=np.float32)
    res = fit_loop({"w": jnp.float32(0.0)}, _quadratic_loss, optax.sgd(0.5),
                   data={"x": x, "y": 3 * x}, key=jax.random.key(0), epochs=30, batch_size=16)
    assert abs(float(res.params["w"]) - 3.0) < 1e-2
    assert set(res.info) == {"epochs_run", "best_epoch", "epoch_s", "valid_s"}
    assert res.info["epochs_run"] == res.info["best_epoch"] == 30
    assert res.losses[-1] < res.losses[0]


def test_fit_loop_compiles_once_per_size_class():
    from recbench.timing import CompileClock
    from recbench.train import cached_optimizer

    def fit(n, k):
        x = np.linspace(-1, 1, n, dtype=np.float32)
        return fit_loop({"w": jnp.float32(0.0)}, _quadratic_loss,
                        cached_optimizer(optax.sgd, learning_rate=0.25),
                        data={"x": x, "y": 2 * x}, key=jax.random.key(k), epochs=3, batch_size=8)

    first = fit(39, 0)
    with CompileClock() as clock:  # same seed; another seed; one row more (bucket 40)
        runs = [fit(39, 0), fit(39, 1), fit(40, 1)]
    assert clock.compiles == 0
    assert float(first.params["w"]) == float(runs[0].params["w"])
    assert float(runs[0].params["w"]) != float(runs[1].params["w"])


def test_another_learning_rate_reuses_the_compiled_epoch_and_trains_as_plain_optax():
    from recbench.timing import CompileClock
    from recbench.train import cached_optimizer

    x = np.linspace(-1, 1, 39, dtype=np.float32)

    def fit(optimizer):
        return fit_loop({"w": jnp.float32(0.0), "b": jnp.zeros(3, jnp.float32)}, _quadratic_loss,
                        optimizer, data={"x": x, "y": 2 * x}, key=jax.random.key(0), epochs=3,
                        batch_size=8)

    fit(cached_optimizer(optax.adam, learning_rate=0.1))
    with CompileClock() as clock:
        runs = {lr: fit(cached_optimizer(optax.adam, learning_rate=lr)) for lr in (0.05, 0.2)}
    assert clock.compiles == 0
    for lr, run in runs.items():  # the same arithmetic as optax.adam(lr): bit for bit
        plain = fit(optax.adam(lr))
        assert float(run.params["w"]) == float(plain.params["w"]) and run.losses == plain.losses
    assert float(runs[0.05].params["w"]) != float(runs[0.2].params["w"])
    # Non-numeric arguments stay part of the program: another value is another optimizer.
    frozen = lambda learning_rate, frozen: optax.multi_transform(  # noqa: E731
        {"train": optax.adam(learning_rate), "frozen": optax.set_to_zero()},
        lambda p: {n: "frozen" if n in frozen else "train" for n in p})
    assert cached_optimizer(frozen, learning_rate=0.1, frozen=("b",)) == \
        cached_optimizer(frozen, learning_rate=0.3, frozen=("b",))
    assert cached_optimizer(frozen, learning_rate=0.1, frozen=("b",)) != \
        cached_optimizer(frozen, learning_rate=0.1, frozen=("w",))
    assert float(fit(cached_optimizer(frozen, learning_rate=0.1, frozen=("w",))).params["w"]) == 0
    # Integers stay constants (an optimizer may branch on them); a NumPy float is traced too.
    assert cached_optimizer(optax.adam, learning_rate=np.float32(0.3)) == \
        cached_optimizer(optax.adam, learning_rate=0.1)
    factored = fit(cached_optimizer(optax.adafactor, learning_rate=0.1, min_dim_size_to_factor=2))
    assert np.isfinite(factored.losses).all()


def test_padded_rows_take_no_step():
    """65 rows are padded to 80 (10 batches of 8): only the 9 batches with real rows step."""
    assert bucket_size(65) == 80 and bucket_size(8) == 8 and bucket_size(1000) == 1024
    x = np.ones(65, np.float32)

    def one_per_step(grads, state, params=None):
        return {"w": jnp.float32(1.0)}, state

    opt = optax.GradientTransformation(lambda p: optax.EmptyState(), one_per_step)
    res = fit_loop({"w": jnp.float32(0.0)}, _quadratic_loss, opt, data={"x": x, "y": 2 * x},
                   key=jax.random.key(0), epochs=1, batch_size=8)
    assert float(res.params["w"]) == 9.0
    # batch b (8 real rows, the last 1) sees w = b: the loss is weighted by real rows
    want = sum(rows * (b - 2.0) ** 2 for b, rows in enumerate([8] * 8 + [1])) / 65
    assert res.losses[0] == pytest.approx(want)


def test_fit_loop_early_stopping_keeps_best():
    x = np.ones(8, np.float32)
    values = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9])
    seen = []

    def validate(params):
        seen.append(float(params["w"]))
        return next(values)

    res = fit_loop({"w": jnp.float32(0.0)}, _quadratic_loss, optax.sgd(0.1),
                   data={"x": x, "y": x}, key=jax.random.key(0), epochs=20, batch_size=8,
                   validate=validate, patience=3)
    assert res.info["best_epoch"] == 2 and res.info["epochs_run"] == 5
    assert float(res.params["w"]) == seen[1]
    assert [e for e, _ in res.validation] == [1, 2, 3, 4, 5]


def test_fit_loop_nan_names_the_epoch():
    x = np.ones(8, np.float32)

    def loss(params, batch, key, aux):  # finite for two epochs, then NaN
        return masked_mean(batch["x"] * 0 + jnp.where(params["t"] > 1.5, jnp.nan, 1.0),
                           batch["mask"]) + 0.0 * params["t"]

    def count(grads, state, params=None):
        return {"t": jnp.float32(1.0)}, state

    opt = optax.GradientTransformation(lambda p: optax.EmptyState(), count)
    with pytest.raises(ModelError, match="epoch 3"):
        fit_loop({"t": jnp.float32(0.0)}, loss, opt, data={"x": x}, key=jax.random.key(0),
                 epochs=10, batch_size=8)


# ---------------------------------------------------------------- models


def test_bpr_beats_most_popular(registry, split):
    ndcg = [registry.metric("ndcg")]
    bpr = _model(registry, "bpr", FAST_BPR).fit(split.train, valid=split.valid,
                                                key=jax.random.key(0))
    pop = _model(registry, "most-popular").fit(split.train, key=jax.random.key(0))
    known = Interactions.concat(split.train, split.valid)
    got = {name: evaluate_ranking(f, train=split.train, test=split.test, known=known,
                                  metrics=ndcg, ks=(10,)).metrics["ndcg@10"]
           for name, f in (("bpr", bpr), ("pop", pop))}
    assert got["bpr"] > got["pop"] + 0.02, got
    assert bpr.fit_info["best_epoch"] >= 1 and bpr.fit_info["epoch_s"] > 0


def test_biased_mf_beats_global_mean(registry, split):
    fitted = _model(registry, "biased-mf", FAST_MF, task="rating").fit(
        split.train, valid=split.valid, key=jax.random.key(0))
    test = split.test
    pred = np.asarray(fitted.predict(jnp.asarray(test.user), jnp.asarray(test.item)))
    rmse = float(np.sqrt(np.mean((pred - test.rating) ** 2)))
    baseline = float(np.sqrt(np.mean((split.train.rating.mean() - test.rating) ** 2)))
    assert rmse < baseline - 0.05, (rmse, baseline)
    assert pred.min() >= 1.0 and pred.max() <= 5.0  # clipped to the training range


@pytest.mark.parametrize("name,task,overrides", [
    ("bpr", "ranking", {**FAST_BPR, "learning_rate": 1e30, "init_std": 1.0}),
    ("biased-mf", "rating", {**FAST_MF, "learning_rate": 1e30}),
])
def test_divergence_raises_model_error_naming_the_epoch(registry, split, name, task, overrides):
    with pytest.raises(ModelError, match=r"epoch \d+"):
        _model(registry, name, overrides, task=task).fit(split.train, valid=split.valid,
                                                        key=jax.random.key(0))


@pytest.mark.parametrize("name,task,overrides", [
    ("bpr", "ranking", FAST_BPR), ("biased-mf", "rating", FAST_MF),
    ("svdpp", "rating", FAST_MF),
])
def test_unknown_users_and_items_get_defined_scores(registry, split, name, task, overrides):
    train = split.train
    cold_users, cold_items = np.arange(5), np.arange(3)
    keep = ~np.isin(train.user, cold_users) & ~np.isin(train.item, cold_items)
    fitted = _model(registry, name, overrides, task=task).fit(train.subset(keep),
                                                             key=jax.random.key(0))
    scores = _scores(fitted, np.arange(10))
    assert np.isfinite(scores).all()
    if name == "bpr":  # the mean trained user: every cold user gets the same list
        assert np.allclose(scores[0], scores[1])
    else:  # Surprise's fallback: mu + b_i for an unknown user, mu + b_u for an unknown item
        pu = np.asarray(fitted.predict(jnp.asarray([0, 0, 7]), jnp.asarray([10, 1, 1])))
        mu, bi, bu = float(fitted.mu), np.asarray(fitted.item_bias), np.asarray(fitted.user_bias)
        assert pu[0] == pytest.approx(np.clip(mu + bi[10], 1, 5), abs=1e-5)
        assert pu[1] == pytest.approx(np.clip(mu, 1, 5), abs=1e-5)
        assert pu[2] == pytest.approx(np.clip(mu + bu[7], 1, 5), abs=1e-5)


@pytest.mark.parametrize("name,overrides", [("bpr", FAST_BPR), ("svdpp", FAST_MF)])
def test_deterministic_by_key(registry, split, name, overrides):
    model = _model(registry, name, {**overrides, "epochs": 5})
    a = _scores(model.fit(split.train, key=jax.random.key(1)), np.arange(6))
    b = _scores(model.fit(split.train, key=jax.random.key(1)), np.arange(6))
    c = _scores(model.fit(split.train, key=jax.random.key(2)), np.arange(6))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_rating_models_need_ratings(registry, split):
    t = split.train
    implicit = Interactions(t.user, t.item, t.n_users, t.n_items)
    with pytest.raises(Exception, match="learns from ratings"):
        _model(registry, "biased-mf", FAST_MF).fit(implicit, key=jax.random.key(0))


def test_neumf_binary_probabilities_and_ranking(registry, split):
    cfg = {"gmf_factors": 8, "mlp_factors": 8, "layers": [16, 8], "epochs": 5, "dropout": 0.0,
           "batch_size": 512, "learning_rate": 0.01, "negatives": 2, "negative_rounds": 1}
    fitted = _model(registry, "neumf", cfg, task="binary").fit(split.train,
                                                               key=jax.random.key(0))
    test = split.test
    p = np.asarray(fitted.predict(jnp.asarray(test.user), jnp.asarray(test.item)))
    assert p.shape == (len(test),) and ((p >= 0) & (p <= 1)).all()
    scores = _scores(fitted, np.arange(8))
    # score() (blocked first-layer split) agrees with the pairwise network
    pair = np.asarray(fitted.predict(jnp.repeat(jnp.arange(8), 100), jnp.tile(jnp.arange(100), 8)))
    assert np.allclose(jax.nn.sigmoid(scores).ravel(), pair, atol=1e-5)


def test_runner_records_divergence_and_goes_on(tmp_path):
    from recbench.config import Experiment
    from recbench.plugins import load_plugins
    from recbench.registry import Registry
    from recbench.runner import RunOptions, Runner

    exp = from_mapping(Experiment, {
        "datasets": [{"name": "synthetic", "config": {"n_users": 80, "n_items": 40,
                                                      "mean_per_user": 10}}],
        "models": [{"name": "bpr", "label": "bpr-diverging",
                    "config": {**FAST_BPR, "learning_rate": 1e30, "init_std": 1.0}},
                   {"name": "bpr", "config": {**FAST_BPR, "epochs": 3}}],
        "protocol": {"metrics": ["ndcg"], "ks": [10]}})
    reg = Registry.build(load_plugins(allow=set()))
    records = {r["model"]: r for r in Runner(exp, reg, RunOptions(tmp_path / "r")).run()}
    bad, good = records["bpr-diverging"], records["bpr"]
    assert bad["status"] == "failed" and "ModelError" in bad["error"]
    assert "epoch" in bad["error"] and "diverged" in bad["error"]
    assert good["status"] == "ok"
    assert {"fit_s", "fit_compile_s", "fit_steady_s"} <= set(good["timings"])
    assert {"epochs_run", "best_epoch", "epoch_s", "valid_s"} <= set(good["fit_info"])


def test_bpr_initial_tables_and_user_fill_compile_as_one_program_each_and_match_eager_ops():
    # One jitted program each (not one compile per eager op), with the arithmetic of the eager
    # expressions they replace: bit for bit, so stored BPR results still reproduce.
    from recbench_builtin.models.factorization import _bpr_init, _mean_fill_unknown_users

    key = jax.random.key(3)
    params, k_fit = _bpr_init(key, np.float32(0.01), 37, 23, 8)
    k_user, k_item, k_fit_eager = jax.random.split(key, 3)
    assert np.array_equal(params["user"], 0.01 * jax.random.normal(k_user, (37, 8)))
    assert np.array_equal(params["item"], 0.01 * jax.random.normal(k_item, (23, 8)))
    assert np.array_equal(jax.random.key_data(k_fit), jax.random.key_data(k_fit_eager))

    emb = params["user"]
    counts = np.arange(37) % 3  # every third user has no training rows
    known = jnp.asarray(counts > 0)
    mean = jnp.where(known[:, None], emb, 0.0).sum(0) / known.sum().astype(jnp.float32)
    eager = jnp.where(known[:, None], emb, mean[None, :])
    assert np.array_equal(_mean_fill_unknown_users(emb, counts), eager)
    assert _mean_fill_unknown_users(emb, np.ones(37)) is emb  # nothing to fill
