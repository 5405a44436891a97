"""What the benchmark reads from the running stack besides sagas: every durable consumer's
backlog, the order view's consistency-lag histogram, and each service's resident memory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import httpx
import psutil
from nats.js import JetStreamContext

from polysaga.events import declaration
from polysaga_tools.histograms import Buckets, bucket_counts
from polysaga_tools.read_side import LAG_HISTOGRAM


async def consumer_backlogs(js: JetStreamContext) -> dict[str, int]:
    """``service/STREAM`` -> messages not yet delivered plus delivered and not acked."""
    backlogs: dict[str, int] = {}
    for context in declaration.CONTEXTS:
        for info in await js.consumers_info(context.stream):
            if not info.config.durable_name:
                continue  # our own ephemeral observer
            pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
            backlogs[f"{info.config.durable_name}/{context.stream}"] = pending
    return backlogs


async def lag_histogram(
    client: httpx.AsyncClient, service_url: str, read_model: str = "order-view"
) -> Buckets:
    """The cumulative buckets of a read model's consistency lag, from its /metrics."""
    response = await client.get(f"{service_url}/metrics")
    response.raise_for_status()
    return bucket_counts(response.text, LAG_HISTOGRAM, {"read_model": read_model})


class PeakRss:
    """Samples each service's resident set size while the benchmark runs; keeps the peak.
    Pids are re-read on every sample, so a restarted service is followed."""

    def __init__(self, pids: Callable[[], Mapping[str, int | None]], every_s: float = 0.5) -> None:
        self._pids = pids
        self._every_s = every_s
        self.peak_bytes: dict[str, int] = {}
        self._processes: dict[int, psutil.Process] = {}

    def sample(self) -> None:
        for service, pid in self._pids().items():
            if pid is None:
                continue
            with contextlib.suppress(psutil.Error):
                process = self._processes.get(pid) or self._processes.setdefault(
                    pid, psutil.Process(pid)
                )
                rss = int(process.memory_info().rss)
                self.peak_bytes[service] = max(self.peak_bytes.get(service, 0), rss)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every_s)

    def megabytes(self) -> dict[str, float]:
        return {s: round(b / 2**20, 1) for s, b in sorted(self.peak_bytes.items())}
