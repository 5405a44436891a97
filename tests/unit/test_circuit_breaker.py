"""The circuit breaker's state machine on a fake clock: it opens after N failures in a row
(not N in all), fails fast while open, lets exactly one probe through when the open
interval is over, closes on the probe's success, reopens on its failure, frees the probe
slot when a probe is abandoned, and shows its state in the gauge."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from polysaga.circuit_breaker import BreakerState, CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str, state: str) -> float | None:
    return REGISTRY.get_sample_value(
        "polysaga_circuit_breaker_state", {"upstream": name, "state": state}
    )


def rejected(name: str) -> float:
    value = REGISTRY.get_sample_value("polysaga_circuit_breaker_rejected_total", {"upstream": name})
    return value or 0.0


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.failed()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_it_opens_after_the_threshold_of_consecutive_failures(clock: Clock) -> None:
    breaker = CircuitBreaker("t-open", failure_threshold=3, open_s=5, clock=clock)
    fail(breaker, 2)
    breaker.before_call()
    breaker.succeeded()  # a success in between: the count starts again
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert (gauge("t-open", "open"), gauge("t-open", "closed")) == (1.0, 0.0)
    before = rejected("t-open")
    clock.now += 4.9
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after_s == pytest.approx(0.1)
    assert rejected("t-open") == before + 1


def test_after_the_open_interval_exactly_one_probe_goes_through(clock: Clock) -> None:
    breaker = CircuitBreaker("t-probe", failure_threshold=1, open_s=5, clock=clock)
    fail(breaker, 1)
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN
    assert gauge("t-probe", "half_open") == 1.0
    breaker.before_call()  # the probe
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            breaker.before_call()  # everyone else, while the probe is out
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert (gauge("t-probe", "closed"), gauge("t-probe", "half_open")) == (1.0, 0.0)
    breaker.before_call()  # closed again: calls go through


def test_a_failed_probe_opens_the_circuit_for_another_interval(clock: Clock) -> None:
    breaker = CircuitBreaker("t-reopen", failure_threshold=2, open_s=5, clock=clock)
    fail(breaker, 2)
    clock.now += 5
    breaker.before_call()
    clock.now += 1
    breaker.failed()  # one failure is enough while half-open
    assert breaker.state is BreakerState.OPEN
    clock.now += 4.9
    assert breaker.state is BreakerState.OPEN  # counted from the probe's failure
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_an_abandoned_probe_frees_the_slot_for_the_next_one(clock: Clock) -> None:
    breaker = CircuitBreaker("t-abandon", failure_threshold=1, open_s=1, clock=clock)
    fail(breaker, 1)
    clock.now += 1
    breaker.before_call()
    breaker.abandoned()
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # a new probe, not a rejection
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("t-bad", failure_threshold=0, open_s=1)
    with pytest.raises(ValueError, match="open_s"):
        CircuitBreaker("t-bad", failure_threshold=1, open_s=0)
