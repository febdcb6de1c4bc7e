"""Placement over the devices of the default backend: a 1-D ``jax.sharding`` mesh, rows sharded.

Evaluation shards its user batches and training the rows of each batch over every device of the
run's backend (the platform of ``jax.default_device``, which the runner sets from ``--device``,
else the default backend: the GPUs or TPUs of an accelerator machine, the host CPU devices on
CPU, several of them under ``--xla_force_host_platform_device_count``); parameters are
replicated. ``RECBENCH_DEVICES=N`` uses the first ``N`` devices only (1: no sharding at all).

On one device :func:`data_mesh` returns ``None`` and callers run the unsharded program unchanged,
so a single-device machine pays nothing for this module.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .errors import ConfigError

AXIS = "data"
DEVICES_VAR = "RECBENCH_DEVICES"


@functools.lru_cache(maxsize=8)
def _mesh(platform: str, count: int) -> Mesh:
    return Mesh(np.array(jax.devices(platform)[:count]), (AXIS,))


def backend() -> str:
    """The run's platform: that of ``jax.default_device`` when set (the runner sets it from
    ``--device``), else the default backend's."""
    device = jax.config.jax_default_device
    if isinstance(device, jax.Device):
        return device.platform
    return str(device) if device else jax.default_backend()


def device_count(platform: str | None = None) -> int:
    """Devices used: all of the run's backend's, or ``$RECBENCH_DEVICES`` of them."""
    platform = platform or backend()
    available = len(jax.devices(platform))
    wanted = os.environ.get(DEVICES_VAR, "").strip()
    if not wanted:
        return available
    if not wanted.isdigit() or not 1 <= int(wanted) <= available:
        raise ConfigError(f"{DEVICES_VAR}={wanted!r}: expected a device count from 1 to "
                          f"{available} (the {platform} devices here); unset it to use them all")
    return int(wanted)


def data_mesh() -> Mesh | None:
    """The 1-D mesh (axis ``"data"``) over the devices used, or ``None`` on one device."""
    platform = backend()
    count = device_count(platform)
    return None if count == 1 else _mesh(platform, count)


def shards(mesh: Mesh | None) -> int:
    return 1 if mesh is None else mesh.size


def round_up(n: int, mesh: Mesh | None) -> int:
    """``n`` rounded up to a multiple of the device count (a batch that splits evenly)."""
    k = shards(mesh)
    return -(-int(n) // k) * k


def rows(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the devices, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def put_rows(tree: Any, mesh: Mesh | None) -> Any:
    """``tree``'s arrays on the devices, their leading axis sharded (unsharded without a mesh)."""
    return jax.device_put(tree) if mesh is None else jax.device_put(tree, rows(mesh))


def put_replicated(tree: Any, mesh: Mesh | None) -> Any:
    """``tree``'s arrays copied whole to every device (left as they are without a mesh)."""
    return tree if mesh is None else jax.device_put(tree, replicated(mesh))


def replicate_fields(obj: Any, mesh: Mesh | None) -> Any:
    """A dataclass fitted model with its array fields replicated, so that a sharded batch does not
    copy them to every device on every call; anything else is returned as it is (JAX then moves
    its arrays where the computation runs)."""
    if mesh is None or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    changes = {f.name: put_replicated(getattr(obj, f.name), mesh)
               for f in dataclasses.fields(obj) if f.init
               and isinstance(getattr(obj, f.name), jax.Array)}
    return dataclasses.replace(obj, **changes) if changes else obj
