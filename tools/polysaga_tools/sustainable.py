"""When a rate is sustainable, and which rates the ramp tries next.

A load step at rate r (open loop, ``duration`` seconds) is sustainable when all of:

1. the generator kept the schedule: orders were sent at >= 95 % of r (else the load
   generator, not the system, was measured);
2. the system accepted them: < 0.5 % of order requests failed;
3. sagas complete as fast as they arrive: every saga placed in the step has ended within
   ``grace_s`` after the step's last arrival;
4. latency stays bounded: p99 saga latency (scheduled arrival -> CONFIRMED/CANCELLED
   observed on the ORDERS stream) <= ``max_p99_ms``;
5. every read model keeps up: ``grace_s`` after the last arrival, the backlog (pending +
   unacknowledged) of every durable consumer, the order view's included, is at most
   ``max_backlog_s`` seconds' worth of this step's events (and never less than
   ``min_backlog`` messages: at a few sagas/s one message in flight is no backlog).

Each step starts on a drained system (every consumer backlog empty), so a step is never
judged by the leftovers of the one before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    min_schedule_ratio: float = 0.95
    max_error_ratio: float = 0.005
    grace_s: float = 3.0
    max_p99_ms: float = 1000.0
    max_backlog_s: float = 0.5
    min_backlog: int = 10


@dataclass(frozen=True)
class StepOutcome:
    rate_per_s: float
    duration_s: float
    sent: int
    failed: int
    ended_in_grace: int
    p99_latency_ms: float | None
    # Per durable consumer ("service/STREAM"): messages still pending after the grace period.
    backlog_after_grace: Mapping[str, int]
    events_per_saga: float  # messages one saga puts on all streams (for the backlog budget)

    @property
    def accepted(self) -> int:
        return self.sent - self.failed


def verdict(step: StepOutcome, criterion: Criterion = Criterion()) -> tuple[bool, str]:
    """Whether the step was sustainable, and the first reason it was not."""
    planned = int(step.rate_per_s * step.duration_s + 1e-9)  # as many as the schedule holds
    if step.sent < criterion.min_schedule_ratio * planned:
        return False, f"generator sent {step.sent} of {planned} planned orders"
    if step.sent == 0:
        return False, "no orders sent"
    if step.failed > criterion.max_error_ratio * step.sent:
        return False, f"{step.failed} of {step.sent} order requests failed"
    if step.ended_in_grace < step.accepted:
        return False, (
            f"{step.accepted - step.ended_in_grace} of {step.accepted} sagas still running"
            f" {criterion.grace_s:.0f} s after the last arrival"
        )
    if step.p99_latency_ms is None or step.p99_latency_ms > criterion.max_p99_ms:
        return False, f"p99 saga latency {step.p99_latency_ms} ms > {criterion.max_p99_ms:.0f}"
    budget = max(
        criterion.min_backlog, criterion.max_backlog_s * step.rate_per_s * step.events_per_saga
    )
    for consumer, backlog in sorted(step.backlog_after_grace.items()):
        if backlog > budget:
            return False, f"consumer {consumer} still has {backlog} messages (> {budget:.0f})"
    return True, "sustainable"


def next_rate(tried: Mapping[float, bool], start: float, growth: float = 1.5) -> float | None:
    """The next rate to try, or None when the maximum is pinned down: grow from ``start``
    by ``growth`` while sustainable, shrink by its square while nothing held, then bisect
    between the highest sustainable and the lowest unsustainable rate until they are within
    15 % (the caller bounds the steps)."""
    if not tried:
        return start
    ok = [r for r, good in tried.items() if good]
    bad = [r for r, good in tried.items() if not good]
    if not bad:
        return round(max(ok) * growth, 1)
    if not ok:  # far above the maximum, perhaps: shrink twice as fast as we grow
        lower = min(bad) / growth**2
        return round(lower, 1) if lower >= 1.0 else None
    best = max(ok)
    above = [r for r in bad if r > best]
    if not above:
        return None  # a lower rate failed after a higher one held: noise, stop here
    ceiling = min(above)
    if ceiling <= best * 1.15:
        return None
    middle = round((best + ceiling) / 2, 1)
    return None if middle in tried else middle
