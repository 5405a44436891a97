"""Wires the gateway: no store, no NATS; one upstream HTTP client per process and one
verifier of bearer JWTs (the identity provider's JWKS), handed to the routes as
dependencies and closed when the service stops."""

from __future__ import annotations

import asyncio
import logging
import math

from litestar import Router
from litestar.di import Provide

from gateway.adapters import UpstreamClient
from gateway.http import ROUTES, problems
from polysaga.auth import BearerVerifier, principal_dependency
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)


def build(settings: ServiceSettings) -> ServiceDefinition:
    upstream = UpstreamClient(
        settings.service_urls,
        settings.dependency_timeout_s,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_open_s=settings.breaker_open_s,
    )
    verifier = BearerVerifier(settings)
    if not verifier.configured:
        log.error(
            "no token issuer configured (POLYSAGA_JWKS_FILE or POLYSAGA_JWKS_URL,"
            " POLYSAGA_JWT_ISSUER, POLYSAGA_JWT_AUDIENCE): every request will be refused"
        )

    def provide_upstream() -> UpstreamClient:
        return upstream

    async def close_clients_on_stop(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
        await stop.wait()
        await upstream.aclose()
        await verifier.aclose()

    return ServiceDefinition(
        name="gateway",
        store="none",
        uses_nats=False,
        problems=problems(retry_after_s=max(1, math.ceil(settings.dependency_timeout_s))),
        route_handlers=[
            Router(
                "/",
                route_handlers=ROUTES,
                dependencies={
                    "upstream": Provide(provide_upstream, sync_to_thread=False),
                    "principal": principal_dependency(verifier),
                },
            )
        ],
        background_loops=[close_clients_on_stop],
    )
