"""The open-loop arrival schedule: order i is due at ``start + i / rate`` whatever happened to
the orders before it, so a slow system cannot slow the load down and hide its own latency
(coordinated omission)."""

from __future__ import annotations


def arrival_offsets(rate_per_s: float, duration_s: float) -> list[float]:
    """Seconds after the phase starts at which each order is due; exactly ``rate * duration``
    of them (rounded down), evenly spaced."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    count = int(rate_per_s * duration_s + 1e-9)
    return [i / rate_per_s for i in range(count)]
