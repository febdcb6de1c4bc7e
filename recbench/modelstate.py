"""A fitted model's state as bytes, and back: how trained models are saved next to their trials.

A fitted model that can be saved exposes ``state()``: a pytree (nested dicts and lists) of arrays
and int / float / str / bool leaves that, with the model's config, holds everything its ``score``
needs. The unfitted model (what the factory returns for that config) rebuilds it with
``restore(state)``. The bytes are msgpack (flax.serialization): arrays keep dtype and shape, and
reading them runs no code, unlike pickle.

Most fitted models are frozen dataclasses of arrays and scalars; :class:`DataclassState` gives
them both halves: ``state()`` is the dict of their fields and ``from_state`` builds one back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from .errors import ModelError

_KEY = "__prng_key__"  # marks a typed PRNG key array, stored as its raw key data
T = TypeVar("T", bound="DataclassState")


def _encode_leaf(value: Any) -> Any:
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return {_KEY: np.asarray(jax.random.key_data(value))}
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return np.asarray(value)
    if isinstance(value, dict):
        return {str(k): _encode_leaf(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_leaf(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelError(f"a model state may hold arrays, dicts, lists and int/float/str/bool/None "
                     f"values, not {type(value).__name__}; return plain arrays from state()")


def _decode_leaf(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_KEY}:
            return jax.random.wrap_key_data(jnp.asarray(value[_KEY]))
        return {k: _decode_leaf(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        # A dtype JAX would narrow (int64 and float64 without jax_enable_x64) stays a numpy array,
        # so no saved value is silently truncated.
        narrowed = jax.dtypes.canonicalize_dtype(value.dtype) != value.dtype
        return value if narrowed else jnp.asarray(value)
    if isinstance(value, list):
        return [_decode_leaf(v) for v in value]
    return value


def encode(state: Any) -> bytes:
    """A model state as msgpack bytes (device arrays are copied to the host)."""
    from flax import serialization  # here, not at import: flax is slow to import

    # Wrapped so a model whose state is a bare array or list still packs as a dict.
    return serialization.msgpack_serialize({"state": _encode_leaf(state)})


def decode(data: bytes) -> Any:
    """The state :func:`encode` wrote, arrays as JAX arrays on the default device."""
    from flax import serialization

    try:
        packed = serialization.msgpack_restore(data)
    except Exception as e:  # noqa: BLE001 - msgpack raises several types for damaged bytes
        raise ModelError(f"saved model state cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(packed, dict) or "state" not in packed:
        raise ModelError("saved model state is not a recbench model state")
    return _decode_leaf(packed["state"])


def saves_state(fitted: Any) -> bool:
    """Whether ``fitted`` is a :class:`~recbench.specs.SavesState`: a callable ``state`` (a
    protocol check alone also accepts a dataclass field named ``state``)."""
    from .specs import SavesState  # specs is the API; this module is below it

    return isinstance(fitted, SavesState) and callable(getattr(fitted, "state", None))


def restores_state(model: Any) -> bool:
    """Whether ``model`` is a :class:`~recbench.specs.RestoresState` with a callable ``restore``."""
    from .specs import RestoresState

    return isinstance(model, RestoresState) and callable(getattr(model, "restore", None))


def can_save(fitted: Any, model: Any) -> bool:
    """Whether ``fitted`` exposes ``state()`` and its ``model`` can ``restore`` it."""
    return saves_state(fitted) and restores_state(model)


class DataclassState:
    """Mixin for a fitted model that is a dataclass: its fields are its state."""

    def state(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_state(cls: type[T], state: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if not isinstance(state, dict) or set(state) != names:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ModelError(f"saved state of {cls.__name__} has fields {got}, expected "
                             f"{sorted(names)}; it was saved by another version of the model")
        # msgpack has no tuples: give tuple-typed fields (such as a loss history) theirs back.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in state.items()})


def restores(fitted_type: type[DataclassState]) -> Any:
    """A model's ``restore`` method for a :class:`DataclassState` fitted type:
    ``restore = restores(MyFitted)`` in the model class."""
    def restore(self: Any, state: dict[str, Any]) -> Any:
        """The fitted model saved as ``state`` (see ``recbench run --save-models``)."""
        return fitted_type.from_state(state)
    return restore
