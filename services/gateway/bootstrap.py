"""Wires the gateway: no store, no NATS; one upstream HTTP client per process, handed to
the routes as a dependency and closed when the service stops."""

from __future__ import annotations

import asyncio

from litestar import Router
from litestar.di import Provide

from gateway.adapters import UpstreamClient
from gateway.http import ROUTES
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.settings import ServiceSettings


def build(settings: ServiceSettings) -> ServiceDefinition:
    upstream = UpstreamClient(settings.service_urls, settings.dependency_timeout_s)

    def provide_upstream() -> UpstreamClient:
        return upstream

    async def close_upstream_on_stop(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
        await stop.wait()
        await upstream.aclose()

    return ServiceDefinition(
        name="gateway",
        store="none",
        uses_nats=False,
        route_handlers=[
            Router(
                "/",
                route_handlers=ROUTES,
                dependencies={"upstream": Provide(provide_upstream, sync_to_thread=False)},
            )
        ],
        background_loops=[close_upstream_on_stop],
    )
