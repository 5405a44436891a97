"""Wires the order view: a MongoDB store whose live generation is resolved per event, the
projection handlers with their lag measured, and the routes with that generation at hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Router
from litestar.di import Provide

from order_view.adapters import (
    ActiveGeneration,
    ensure_indexes,
    ensure_pointer,
    generation,
)
from order_view.application import EVENT_HANDLERS, SERVICE, Projection
from order_view.http import ROUTES
from polysaga import metrics
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import EventHandler
from polysaga.mongo.client import MongoDatabase, connect
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

_LAG = metrics.CONSISTENCY_LAG.labels(read_model=SERVICE)


def _live(projection: Projection, active: ActiveGeneration) -> EventHandler:
    async def handle(event: Envelope[Any], db: MongoDatabase) -> None:
        await projection(event, await active.for_writing(db))
        _LAG.observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))

    return handle


def build(settings: ServiceSettings) -> ServiceDefinition:
    # The projection's lookups (users, products) use connections of their own, so they do
    # not take turns with the writes on the single writing connection (the view's
    # bottleneck: benchmarks/profiles/order-view-*.txt). Closed when the process exits.
    _, lookup_db = connect(settings.mongo_url.get_secret_value(), pool_size=2)
    active = ActiveGeneration(lookup_db=lookup_db)

    async def setup(db: MongoDatabase) -> None:
        await ensure_indexes(generation(db, await ensure_pointer(db)))

    def provide_generations() -> ActiveGeneration:
        return active

    return ServiceDefinition(
        name=SERVICE,
        store="mongo",
        mongo_setup=setup,
        # Every projection write is guarded by event id or per-source version: redelivery
        # changes nothing without an inbox (tests/integration/test_order_view_projection.py).
        mongo_inbox=False,
        event_handlers={name: _live(p, active) for name, p in EVENT_HANDLERS.items()},
        route_handlers=[
            Router(
                path="/",
                route_handlers=ROUTES,
                dependencies={"generations": Provide(provide_generations, sync_to_thread=False)},
            )
        ],
    )
