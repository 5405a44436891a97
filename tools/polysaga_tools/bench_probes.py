"""What the benchmark reads from the running stack besides sagas: every durable consumer's
backlog, the order view's consistency-lag histogram, each service's resident memory, and the
services' hop histograms and counters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import psutil
from nats.js import JetStreamContext

from polysaga.events import declaration
from polysaga_tools.histograms import Buckets, bucket_counts, counter_value, delta
from polysaga_tools.histograms import quantile as histogram_quantile
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


HOP_HISTOGRAM = "polysaga_event_hop_seconds"
HOPS = ("created_to_published", "published_to_delivered", "delivered_to_committed")
RELAY_COMMITS = "polysaga_outbox_relay_commits_total"
VIEW_WRITES = "polysaga_view_writes_total"


def _quantiles_ms(buckets: Buckets) -> dict[str, float | None]:
    def ms(q: float) -> float | None:
        seconds = histogram_quantile(q, buckets)
        return None if seconds is None else round(seconds * 1000, 2)

    return {"p50": ms(0.5), "p99": ms(0.99)}


def _sum(histograms: list[Buckets]) -> Buckets:
    total: dict[float, float] = {}
    for buckets in histograms:
        for le, count in buckets:
            total[le] = total.get(le, 0.0) + count
    return sorted(total.items())


@dataclass(frozen=True)
class MetricsSnapshot:
    """What every service's /metrics said at one moment: the hop histograms
    (``polysaga_event_hop_seconds``) per service and hop, and the counters the bound is
    built from, summed over the services."""

    hops: dict[str, dict[str, Buckets]]  # service -> hop -> buckets
    counters: dict[str, float]

    def since(self, before: MetricsSnapshot) -> MetricsSnapshot:
        return MetricsSnapshot(
            {
                service: {
                    hop: delta(b, before.hops.get(service, {}).get(hop, []))
                    for hop, b in hops.items()
                }
                for service, hops in self.hops.items()
            },
            {
                name: max(0.0, value - before.counters.get(name, 0.0))
                for name, value in self.counters.items()
            },
        )

    def hop_quantiles_ms(self) -> dict[str, dict[str, float | None]]:
        """Every consumer's events together."""
        return {
            hop: _quantiles_ms(_sum([hops.get(hop, []) for hops in self.hops.values()]))
            for hop in HOPS
        }

    def hop_quantiles_ms_by_service(self) -> dict[str, dict[str, dict[str, float | None]]]:
        return {
            service: {hop: _quantiles_ms(hops.get(hop, [])) for hop in HOPS}
            for service, hops in sorted(self.hops.items())
            if any(b and b[-1][1] > 0 for b in hops.values())
        }


async def metrics_snapshot(
    client: httpx.AsyncClient, service_urls: Mapping[str, str]
) -> MetricsSnapshot:
    names = list(service_urls)
    texts = await asyncio.gather(
        *(client.get(f"{url}/metrics") for url in service_urls.values()), return_exceptions=True
    )
    hops: dict[str, dict[str, Buckets]] = {}
    counters = {RELAY_COMMITS: 0.0, VIEW_WRITES: 0.0}
    for service, response in zip(names, texts, strict=True):
        if isinstance(response, BaseException) or not response.is_success:
            continue
        hops[service] = {
            hop: bucket_counts(response.text, HOP_HISTOGRAM, {"hop": hop}) for hop in HOPS
        }
        for name in counters:
            counters[name] += counter_value(response.text, name)
    return MetricsSnapshot(hops, counters)
