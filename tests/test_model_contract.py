"""Every registered built-in model passes the contract kit shipped in recbench.testing, and every
rule of the kit rejects a deliberately broken tiny model with a message naming the rule."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import pytest

from recbench import ModelSpec, hookimpl
from recbench.config import check
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.testing import ContractError, check_model

BUILTIN = Registry.build(load_plugins(allow=set()))
N_ITEMS = 40  # recbench.testing.tiny_dataset's


# The sequential models at test size: no rule of the kit depends on the width, and their default
# programs (two attention blocks over 50 positions, ...) take 10-20 s each to compile on 2 cores.
_SMALL = {"dim": 16, "max_len": 8, "epochs": 4, "patience": 2}
TEST_CONFIGS = {"sasrec": {**_SMALL, "blocks": 1}, "gru4rec": _SMALL, "lstm": _SMALL,
                "caser": {**_SMALL, "window": 3},
                # One small hidden layer: DeepFM's full ranking runs its MLP over every pair.
                "deepfm": {"epochs": 3, "hidden": [8], "factors": 8}}


@pytest.mark.parametrize("name", BUILTIN.names("model"))
def test_builtin_model_passes_contract(name):
    # Every built-in serves `--save-models`: rule 9 then checks save -> load -> identical scores.
    # Other models trained for epochs train for 3 here: no rule depends on the number of epochs.
    fields = {f.name for f in dataclasses.fields(BUILTIN.model(name).config)}
    config = TEST_CONFIGS.get(name, {"epochs": 3} if "epochs" in fields else None)
    check_model(name, registry=BUILTIN, config=config, require_saving=True)


# ---------------------------------------------------------------- broken models


@jax.jit
def _zeros(users: jax.Array) -> jax.Array:
    return jnp.zeros((users.shape[0], N_ITEMS), jnp.float32) + 0.0 * users[:, None]


@dataclass(frozen=True)
class Good:
    """A correct constant model; each broken model below overrides one thing."""

    ctx: object = None

    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        return _zeros(batch.users.astype(jnp.float32))

    def predict(self, users, items):
        return jnp.full(users.shape, 0.5, jnp.float32)


class Leaky(Good):
    def score(self, batch):  # scores depend on the batch
        return jnp.broadcast_to(batch.users.astype(jnp.float32).mean(), (batch.users.shape[0],
                                                                         N_ITEMS))


class Recompiling(Good):
    def score(self, batch):  # a fresh jit each call compiles every time
        return jax.jit(lambda u: jnp.zeros((u.shape[0], N_ITEMS), jnp.float32) + 0.0 * u[:, None])(
            batch.users.astype(jnp.float32))


class Mutating(Good):
    def fit(self, train, *, valid=None, key):
        # Interactions are read-only; a model that forces its way in must still be caught.
        items = train.item
        items.setflags(write=True)
        items[0] = (items[0] + 1) % N_ITEMS
        return self


class WrongShape(Good):
    def score(self, batch):
        return jnp.zeros((batch.users.shape[0], N_ITEMS + 1), jnp.float32)


class WrongDtype(Good):
    def score(self, batch):
        return jnp.zeros((batch.users.shape[0], N_ITEMS), jnp.bfloat16)


class NaNScores(Good):
    def score(self, batch):
        return jnp.full((batch.users.shape[0], N_ITEMS), jnp.nan, jnp.float32)


_draws = itertools.count()


@dataclass(frozen=True)
class Nondeterministic(Good):
    offset: float = 0.0

    def fit(self, train, *, valid=None, key):  # hidden global state: a process-wide counter
        return Nondeterministic(self.ctx, float(next(_draws)))

    def score(self, batch):
        return _zeros(batch.users.astype(jnp.float32)) + jnp.float32(self.offset)


@partial(jax.jit, static_argnames="mean")
def _baked(users: jax.Array, *, mean: float) -> jax.Array:
    return jnp.zeros((users.shape[0], N_ITEMS), jnp.float32) + jnp.float32(mean)


@dataclass(frozen=True)
class BakedMean(Good):
    """biased-mf's old bug: a data-dependent scalar baked into the program as a constant."""

    scores: jax.Array | None = None

    def fit(self, train, *, valid=None, key):
        mean = float(train.item.mean())
        return BakedMean(self.ctx, _baked(jnp.arange(N_ITEMS), mean=mean)[0])

    def score(self, batch):
        return _zeros(batch.users.astype(jnp.float32)) + self.scores[None, :]


class BakedPointMean(Good):
    """The same bug on the rating path only: the ranking refit compiles nothing, this one does."""

    def fit(self, train, *, valid=None, key):
        if self.ctx.task != "ranking":  # negated: not a program BakedMean compiled already
            _baked(jnp.arange(N_ITEMS), mean=-float(train.item.mean()))
        return self


class NoPredict:
    def __init__(self, ctx):
        self.good = Good(ctx)

    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        return self.good.score(batch)


class WrongPredictShape(Good):
    def predict(self, users, items):
        return jnp.zeros((users.shape[0] + 1,), jnp.float32)


class NotProbabilities(Good):
    def predict(self, users, items):
        return jnp.full(users.shape, 3.0, jnp.float32)


class HalfSaving(Good):
    def state(self):  # a state, but nothing can restore it
        return {}


class Shifted(Good):
    def score(self, batch):
        return _zeros(batch.users.astype(jnp.float32)) + 1.0


class LossySaving(Good):
    def state(self):
        return {}

    def restore(self, state):  # loses what the scores depend on
        return Shifted()


@partial(jax.jit, static_argnames="cold_rule")
def _cold_scores(users: jax.Array, counts: jax.Array, feature: jax.Array, *, cold_rule: str
                 ) -> jax.Array:
    """1 for an item with training interactions; a cold item gets what ``cold_rule`` says."""
    first = jnp.arange(N_ITEMS) < 8  # the items rule 10 makes cold
    cold = {"nan": jnp.where(first, jnp.nan, feature), "by id": jnp.arange(N_ITEMS) / N_ITEMS,
            "constant": jnp.zeros(N_ITEMS), "feature": feature}[cold_rule]
    row = jnp.where(counts > 0, 1.0, cold.astype(jnp.float32))
    return jnp.broadcast_to(row, (users.shape[0], N_ITEMS)) + 0.0 * users[:, None]


@dataclass(frozen=True)
class ColdItems(Good):
    """Declares cold_items; scores its cold items by ``cold_rule`` (only "feature" is right)."""

    cold_rule = "feature"
    counts: jax.Array | None = None

    def fit(self, train, *, valid=None, key):
        return dataclasses.replace(self, counts=jnp.asarray(train.item_counts))

    def score(self, batch):
        feature = jnp.asarray(self.ctx.item_features.values[:, 0], jnp.float32)
        return _cold_scores(batch.users.astype(jnp.float32), self.counts, feature,
                            cold_rule=self.cold_rule)


class ColdNaN(ColdItems):
    cold_rule = "nan"


class ColdById(ColdItems):
    cold_rule = "by id"  # not from the features: two cold items alike in features differ


class ColdConstant(ColdItems):
    cold_rule = "constant"


@dataclass(frozen=True)
class DriftingConfig:
    """A config whose validation changes its value: it cannot round-trip."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        check(self.scale > 0, f"scale must be > 0, got {self.scale}")
        object.__setattr__(self, "scale", self.scale * 2)


def _check(cls, *, tasks=("ranking",), config=None, require_saving=False, family="baseline",
           cold_items=False):
    extra = {} if config is None else {"config": config}
    spec = ModelSpec("broken", family, frozenset(tasks), lambda c, ctx: cls(ctx),
                     cold_items=cold_items, **extra)

    class Plugin:
        @hookimpl
        def register_models(self):
            return [spec]

    check_model("broken", registry=Registry.build(load_plugins(allow=set(), objects=(Plugin(),))),
                require_saving=require_saving)


def test_the_reference_model_passes():
    _check(Good, tasks=("ranking", "binary"))


@dataclass(frozen=True)
class HoldsAState(Good):
    """A field that happens to be named ``state``: no ``state()`` method, so not saveable."""

    state: str = "fitted"


def test_a_field_named_state_is_not_a_state_method():
    _check(HoldsAState)
    with pytest.raises(ContractError, match="it cannot be saved"):
        _check(HoldsAState, require_saving=True)


def test_saving_can_be_required():
    with pytest.raises(ContractError, match="it cannot be saved"):
        _check(Good, require_saving=True)


@pytest.mark.parametrize("broken, tasks, config, message", [
    (Good, ("ranking",), DriftingConfig, "does not round-trip"),
    (Mutating, ("ranking",), None, "modified its inputs"),
    (WrongShape, ("ranking",), None, r"shape \(8, 41\), expected \(8, 40\)"),
    (WrongDtype, ("ranking",), None, "bfloat16, expected float32"),
    (NaNScores, ("ranking",), None, "returned NaN"),
    (Nondeterministic, ("ranking",), None, "same key gave different scores"),
    (Leaky, ("ranking",), None, "depend on the other users"),
    (Recompiling, ("ranking",), None, "recompiled on a second call"),
    (NoPredict, ("ranking", "rating"), None, "has no predict"),
    (WrongPredictShape, ("ranking", "rating"), None, "finite values, got shape"),
    (NotProbabilities, ("ranking", "binary"), None, r"probabilities in \[0, 1\]"),
    (BakedMean, ("ranking",), None, "refit .* on another split of the same size recompiled"),
    (BakedPointMean, ("ranking", "rating"), None,
     "refit \\(task 'rating'\\) on another split of the same size recompiled"),
    (HalfSaving, ("ranking",), None, r"has state\(\) but its model has no restore"),
    (LossySaving, ("ranking",), None, "saved and restored model scores differently"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_contract_rejects_each_broken_rule(broken, tasks, config, message):
    with pytest.raises(ContractError, match=f"'broken' breaks the contract: .*{message}"):
        _check(broken, tasks=tasks, config=config)


def test_a_model_scoring_cold_items_from_their_features_passes():
    _check(ColdItems, family="content", cold_items=True)


@pytest.mark.parametrize("broken, message", [
    (ColdNaN, "scores an item without interactions NaN"),
    (ColdById, "identical features score differently"),
    (ColdConstant, "the same score; score them from their features"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_contract_rejects_each_broken_cold_item_rule(broken, message):
    with pytest.raises(ContractError, match=f"'broken' breaks the contract: .*{message}"):
        _check(broken, family="content", cold_items=True)
