"""Every registered built-in model passes the contract kit shipped in recbench.testing."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import pytest

from recbench import ModelSpec, hookimpl
from recbench.plugins import load_plugins
from recbench.registry import Registry
from recbench.testing import ContractError, check_model

BUILTIN = Registry.build(load_plugins(allow=set()))


@pytest.mark.parametrize("name", BUILTIN.names("model"))
def test_builtin_model_passes_contract(name):
    check_model(name, registry=BUILTIN)


@dataclass(frozen=True)
class _Leaky:
    """Scores depend on the batch: the kit must catch it."""

    def fit(self, train, *, valid=None, key):
        return self

    def score(self, batch):
        return jnp.broadcast_to(batch.users.astype(jnp.float32).mean(), (batch.users.shape[0], 40))


class _LeakyPlugin:
    @hookimpl
    def register_models(self):
        return [ModelSpec("leaky", "baseline", frozenset({"ranking"}), lambda c, x: _Leaky())]


def test_contract_catches_batch_dependence():
    reg = Registry.build(load_plugins(allow=set(), objects=(_LeakyPlugin(),)))
    with pytest.raises(ContractError, match="depend on the other users"):
        check_model("leaky", registry=reg)


def test_contract_catches_recompilation():
    @dataclass(frozen=True)
    class Recompiling:
        def fit(self, train, *, valid=None, key):
            return self

        def score(self, batch):
            # a fresh jit each call retraces every time
            return jax.jit(lambda u: jnp.zeros((u.shape[0], 40), jnp.float32) + 0.0 * u[:, None])(
                batch.users.astype(jnp.float32))

    class P:
        @hookimpl
        def register_models(self):
            return [ModelSpec("recompiling", "baseline", frozenset({"ranking"}),
                              lambda c, x: Recompiling())]

    reg = Registry.build(load_plugins(allow=set(), objects=(P(),)))
    with pytest.raises(ContractError, match="recompiled"):
        check_model("recompiling", registry=reg)
