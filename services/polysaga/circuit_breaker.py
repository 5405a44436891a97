"""A circuit breaker per upstream: after ``failure_threshold`` failures in a row the circuit
opens and calls fail at once instead of waiting for a timeout; after ``open_s`` one probe
is let through (half-open) while every other call still fails at once; the probe's success
closes the circuit, its failure opens it again. Its state is the gauge
``polysaga_circuit_breaker_state{upstream, state}``.

The caller says what a failure is (no answer, or a 5xx) by calling ``failed``; a call given
up on without a verdict (the request was cancelled) frees the probe slot with ``abandoned``.
Not a library: the ones for asyncio let every call through while half-open, which sends
the whole queue at an upstream that is only starting to recover."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from polysaga import metrics


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"circuit to {name} is open")
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        open_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or open_s <= 0:
            raise ValueError("failure_threshold >= 1 and open_s > 0")
        self.name = name
        self._threshold = failure_threshold
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state = BreakerState.CLOSED
        # Read at each scrape, so an open circuit whose interval is over shows as half-open
        # before anyone calls.
        for state in BreakerState:
            metrics.CIRCUIT_BREAKER_STATE.labels(upstream=name, state=state.value).set_function(
                lambda state=state: 1.0 if self.state is state else 0.0  # type: ignore[misc]
            )

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._open_s:
            self._enter(BreakerState.HALF_OPEN)
        return self._state

    def before_call(self) -> None:
        """Admit a call, or raise CircuitOpenError at once."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True  # this call is the probe
            return
        metrics.CIRCUIT_BREAKER_REJECTED.labels(upstream=self.name).inc()
        remaining = self._open_s - (self._clock() - self._opened_at)
        raise CircuitOpenError(self.name, max(remaining, 0.0))

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._enter(BreakerState.CLOSED)

    def failed(self) -> None:
        self._failures += 1
        probe_failed = self._probing
        self._probing = False
        if probe_failed or (
            self._state is BreakerState.CLOSED and self._failures >= self._threshold
        ):
            self._opened_at = self._clock()
            self._enter(BreakerState.OPEN)

    def abandoned(self) -> None:
        self._probing = False

    def _enter(self, state: BreakerState) -> None:
        self._state = state
