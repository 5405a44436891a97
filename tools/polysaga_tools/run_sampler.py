"""Samples a load run once a second from the services' own ``/metrics`` (no Prometheus
needed): sagas completed per second, and p50/p99 of saga duration and of the order-view
consistency lag over the last window. The samples feed ``polysaga_tools.plot``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from types import TracebackType

import httpx

from polysaga_tools.histograms import Buckets, bucket_counts, delta, quantile
from polysaga_tools.plot import RunSample
from polysaga_tools.read_side import LAG_HISTOGRAM

SAGA_HISTOGRAM = "polysaga_saga_duration_seconds"


@dataclass(frozen=True)
class _Reading:
    at: float  # monotonic seconds
    sagas_ended: float
    saga_buckets: Buckets
    lag_buckets: Buckets


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class RunSampler:
    """``async with RunSampler(client, services) as sampler:`` around the load; afterwards
    ``sampler.samples`` has one RunSample per interval, the last one taken on exit."""

    def __init__(
        self, client: httpx.AsyncClient, services: dict[str, str], interval_s: float = 1.0
    ) -> None:
        self._client = client
        self._order = services["order"]
        self._view = services["order-view"]
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._previous: _Reading | None = None
        self.samples: list[RunSample] = []

    async def __aenter__(self) -> RunSampler:
        self._started = time.monotonic()
        self._previous = await self._read()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if exc_type is None:
            await self._sample()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._sample()

    async def _read(self) -> _Reading:
        order_text, view_text = await asyncio.gather(
            self._metrics(self._order), self._metrics(self._view)
        )
        ended = bucket_counts(order_text, SAGA_HISTOGRAM)
        return _Reading(
            at=time.monotonic(),
            # The duration histogram's +Inf bucket counts every saga that ended.
            sagas_ended=ended[-1][1] if ended else 0.0,
            saga_buckets=ended,
            lag_buckets=bucket_counts(view_text, LAG_HISTOGRAM, {"read_model": "order-view"}),
        )

    async def _metrics(self, url: str) -> str:
        response = await self._client.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text

    async def _sample(self) -> None:
        try:
            now = await self._read()
        except httpx.HTTPError:
            return  # a missed scrape widens the next window; the plot shows no gap in time
        before = self._previous
        assert before is not None, "sampling starts in __aenter__"
        elapsed = max(now.at - before.at, 1e-6)
        sagas = delta(now.saga_buckets, before.saga_buckets)
        lag = delta(now.lag_buckets, before.lag_buckets)
        self.samples.append(
            RunSample(
                t_s=round(now.at - self._started, 3),
                completed_per_s=max(now.sagas_ended - before.sagas_ended, 0.0) / elapsed,
                saga_latency_p50_ms=_ms(quantile(0.5, sagas)),
                saga_latency_p99_ms=_ms(quantile(0.99, sagas)),
                lag_p50_ms=_ms(quantile(0.5, lag)),
                lag_p99_ms=_ms(quantile(0.99, lag)),
            )
        )
        self._previous = now
