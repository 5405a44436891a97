"""Histogram buckets read from /metrics text, windows between two reads, and quantiles."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from polysaga_tools.histograms import bucket_counts, delta, quantile


def exposition(observations: dict[str, list[float]]) -> str:
    registry = CollectorRegistry()
    histogram = Histogram(
        "demo_seconds", "Demo.", ["outcome"], buckets=(0.1, 0.5, 1.0), registry=registry
    )
    for outcome, values in observations.items():
        for value in values:
            histogram.labels(outcome=outcome).observe(value)
    return generate_latest(registry).decode()


def test_buckets_are_summed_over_the_matching_series() -> None:
    text = exposition({"confirmed": [0.05, 0.3], "cancelled": [0.7, 2.0]})
    assert bucket_counts(text, "demo_seconds") == [
        (0.1, 1.0),
        (0.5, 2.0),
        (1.0, 3.0),
        (float("inf"), 4.0),
    ]
    assert bucket_counts(text, "demo_seconds", {"outcome": "cancelled"})[-1] == (
        float("inf"),
        2.0,
    )
    assert bucket_counts(text, "other_seconds") == []


def test_quantile_interpolates_within_the_bucket_like_promql() -> None:
    buckets = [(0.1, 0.0), (0.5, 10.0), (1.0, 10.0), (float("inf"), 10.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.3)  # halfway through 0.1..0.5
    assert quantile(0.99, [(0.1, 0.0), (float("inf"), 4.0)]) == 0.1  # +Inf: largest bound
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.5, []) is None


def test_delta_is_the_window_between_two_reads_and_survives_a_restart() -> None:
    before = [(0.1, 1.0), (float("inf"), 3.0)]
    now = [(0.1, 4.0), (float("inf"), 9.0)]
    assert delta(now, before) == [(0.1, 3.0), (float("inf"), 6.0)]
    restarted = [(0.1, 0.0), (float("inf"), 1.0)]
    assert delta(restarted, before) == restarted
