"""RunSampler turns two reads of the services' histograms into one window's figures: what
was observed before the run does not leak into it."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from polysaga_tools.run_sampler import RunSampler

SERVICES = {"order": "http://order.test", "order-view": "http://view.test"}


def metrics_transport() -> tuple[httpx.MockTransport, Histogram, Histogram]:
    """Each URL serves the text of its own registry, as the two services do."""
    order, view = CollectorRegistry(), CollectorRegistry()
    sagas = Histogram(
        "polysaga_saga_duration_seconds",
        "Saga duration.",
        ["outcome"],
        buckets=(0.05, 0.1, 1, 30),
        registry=order,
    )
    lag = Histogram(
        "polysaga_consistency_lag_seconds",
        "Lag.",
        ["read_model"],
        buckets=(0.01, 0.05, 1, 30),
        registry=view,
    )
    registries = {"order.test": order, "view.test": view}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        return httpx.Response(200, content=generate_latest(registries[request.url.host]))

    return httpx.MockTransport(handler), sagas, lag


async def test_a_window_holds_only_what_happened_during_it() -> None:
    transport, sagas, lag = metrics_transport()
    for _ in range(50):  # before the run: slow sagas, stale lag
        sagas.labels(outcome="confirmed").observe(20.0)
        lag.labels(read_model="order-view").observe(20.0)
    async with (
        httpx.AsyncClient(transport=transport) as client,
        RunSampler(client, SERVICES, interval_s=3600) as sampler,
    ):
        for _ in range(4):
            sagas.labels(outcome="confirmed").observe(0.04)
            sagas.labels(outcome="cancelled").observe(0.04)
            lag.labels(read_model="order-view").observe(0.03)
        lag.labels(read_model="order-prices").observe(25.0)  # another read model: not plotted
    (sample,) = sampler.samples  # the interval never passed: only the closing sample
    assert sample.completed_per_s > 0
    assert sample.saga_latency_p50_ms is not None and sample.saga_latency_p50_ms <= 50
    assert sample.saga_latency_p99_ms is not None and sample.saga_latency_p99_ms <= 50
    assert sample.lag_p50_ms is not None and 10 <= sample.lag_p50_ms <= 50
    assert sample.lag_p99_ms is not None and sample.lag_p99_ms <= 50


async def test_a_quiet_window_has_no_quantiles() -> None:
    transport, _, _ = metrics_transport()
    async with (
        httpx.AsyncClient(transport=transport) as client,
        RunSampler(client, SERVICES, interval_s=3600) as sampler,
    ):
        pass
    (sample,) = sampler.samples
    assert sample.completed_per_s == 0
    assert (sample.saga_latency_p50_ms, sample.lag_p99_ms) == (None, None)
