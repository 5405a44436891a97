"""Prometheus histograms read straight from a service's ``/metrics`` text: cumulative bucket
counts, and quantiles interpolated within a bucket as PromQL's histogram_quantile does."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

Buckets = list[tuple[float, float]]  # (upper bound "le", cumulative count), sorted by le


def bucket_counts(text: str, histogram: str, labels: Mapping[str, str] | None = None) -> Buckets:
    """The cumulative buckets of ``histogram`` summed over every series whose labels include
    ``labels`` (e.g. all outcomes of the saga duration)."""
    wanted = dict(labels or {})
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != f"{histogram}_bucket":
                continue
            if any(sample.labels.get(k) != v for k, v in wanted.items()):
                continue
            le = float(sample.labels["le"])
            counts[le] = counts.get(le, 0.0) + sample.value
    return sorted(counts.items())


def delta(now: Buckets, before: Buckets) -> Buckets:
    """Observations between two reads of the same histogram (a restart resets to ``now``)."""
    previous = dict(before)
    changed = [(le, count - previous.get(le, 0.0)) for le, count in now]
    return now if any(count < 0 for _, count in changed) else changed


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile in the histogram's unit, None when it holds no observation. Linear
    within the bucket; a quantile in the +Inf bucket is the largest finite bound."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    target, previous_le, previous_count = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= target:
            if math.isinf(le):
                return previous_le
            share = (target - previous_count) / max(count - previous_count, 1e-9)
            return previous_le + (le - previous_le) * share
        previous_le, previous_count = le, count
    return previous_le


def counter_value(text: str, counter: str, labels: Mapping[str, str] | None = None) -> float:
    """A counter (``…_total``) summed over every series whose labels include ``labels``."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != counter:
                continue
            if any(sample.labels.get(k) != v for k, v in wanted.items()):
                continue
            total += sample.value
    return total
