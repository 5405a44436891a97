"""Prometheus metrics of the operator's reconciles."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import kopf
from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "polysaga_operator_reconciles",
    "ServiceDatabase reconciles by trigger and result.",
    ["trigger", "result"],
)
RECONCILE_DURATION = Histogram(
    "polysaga_operator_reconcile_duration_seconds",
    "Time one ServiceDatabase reconcile took, by trigger.",
    ["trigger"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@asynccontextmanager
async def observed(trigger: str) -> AsyncIterator[None]:
    """Counts the reconcile by how it ended: success, temporary_error, permanent_error, error."""
    started = time.perf_counter()
    result = "error"
    try:
        yield
        result = "success"
    except kopf.TemporaryError:
        result = "temporary_error"
        raise
    except kopf.PermanentError:
        result = "permanent_error"
        raise
    finally:
        RECONCILES.labels(trigger=trigger, result=result).inc()
        RECONCILE_DURATION.labels(trigger=trigger).observe(time.perf_counter() - started)
