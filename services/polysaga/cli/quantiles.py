"""Quantiles of raw samples and of Prometheus histograms (the same interpolation as
PromQL's ``histogram_quantile``), for the benchmark's reports."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile of raw samples, linear between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], not {q}")
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def histogram_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The q-quantile of a cumulative histogram ``{upper bound: count}`` (``+Inf`` included),
    interpolated linearly inside the bucket it falls in; None for an empty histogram. A
    quantile in the ``+Inf`` bucket is reported as the highest finite bound, as PromQL does."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], not {q}")
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound


def histogram_delta(
    after: Mapping[float, float], before: Mapping[float, float]
) -> dict[float, float]:
    """What a cumulative histogram counted between two scrapes."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}
