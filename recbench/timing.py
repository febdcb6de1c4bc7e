"""Compile time, measured apart from steady-state time.

JAX reports tracing, lowering and backend compilation through :mod:`jax.monitoring`; a
:class:`CompileClock` sums the wall time of those spans while it is active (overlapping spans once),
so a caller can report compile time separately without running anything twice::

    with CompileClock() as clock:
        fitted = model.fit(...)
    timings = {"fit_compile_s": clock.seconds()}

It also counts backend compilations (``clock.compiles``): the event fires for every executable
built in this process, a persistent-cache hit included, and never for a call served by a jitted
function's in-memory cache, so ``compiles == 0`` means "nothing was (re)compiled".
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

_COMPILE_EVENTS = frozenset({"/jax/core/compile/jaxpr_trace_duration",
                             "/jax/core/compile/jaxpr_to_mlir_module_duration",
                             "/jax/core/compile/backend_compile_duration"})
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_active_clocks: list[CompileClock] = []
_listening = False


def _on_compile_span(event: str, start: float, end: float, **_: Any) -> None:
    if event in _COMPILE_EVENTS:
        for clock in list(_active_clocks):
            clock.spans.append((start, end))
            if event == _BACKEND_COMPILE:
                clock.compiles += 1


def _on_compile_duration(event: str, duration: float, **_: Any) -> None:
    # Fallback for JAX without time-span events: lowering and backend compilation are synchronous
    # and never nested, so they end now (tracing, which nests, is left out).
    if event in _COMPILE_EVENTS and not event.endswith("jaxpr_trace_duration"):
        now = time.time()
        _on_compile_span(event, now - duration, now)


class CompileClock:
    """Wall time JAX spends tracing, lowering and compiling while active (nested spans once).

    Counts every compilation in the process meanwhile, other threads' included. Exact, unlike
    timing a first batch against a second, and it needs no batch to be run twice.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.compiles = 0  # backend compilations while active

    def __enter__(self) -> CompileClock:
        global _listening
        if not _listening:
            if hasattr(jax.monitoring, "register_event_time_span_listener"):
                jax.monitoring.register_event_time_span_listener(_on_compile_span)
            else:
                jax.monitoring.register_event_duration_secs_listener(_on_compile_duration)
            _listening = True
        _active_clocks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active_clocks.remove(self)

    def seconds(self) -> float:
        total, reach = 0.0, -np.inf
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total
