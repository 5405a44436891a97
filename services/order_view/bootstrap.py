"""Wires the order view: a MongoDB store whose live generation is resolved per event, the
projection handlers with their lag measured, and the routes with that generation at hand."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
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
from order_view.application import EVENT_HANDLERS, SERVICE, Projection, Refused, project_batch
from order_view.http import PROBLEMS, ROUTES
from order_view.writer import CoalescingWriter
from polysaga import metrics, tracing
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import BatchRunner, EventHandler
from polysaga.mongo.client import MongoDatabase, connect
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

_LAG = metrics.CONSISTENCY_LAG.labels(read_model=SERVICE)
log = logging.getLogger(__name__)


def _live(projection: Projection, active: ActiveGeneration) -> EventHandler:
    async def handle(event: Envelope[Any], db: MongoDatabase) -> None:
        _count_refused(event, await projection(event, await active.for_writing(db)))
        _observe_lag(event)

    return handle


def _count_refused(event: Envelope[Any], refused: Refused) -> None:
    """Count and log the saga steps ``event`` made the view refuse (when it happened)."""
    for step in refused:
        metrics.SAGA_STEPS_REFUSED.labels(read_model=SERVICE, step=step).inc()
    if refused:
        log.warning(
            "order %s: the saga does not allow %s beside its other steps (after %s %s); not shown",
            event.aggregate_id,
            ", ".join(refused),
            event.name,
            event.event_id,
        )


def _observe_lag(event: Envelope) -> None:
    _LAG.observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))


def _batched(writer: CoalescingWriter) -> BatchRunner:
    """The consumers' batch runner: the batch goes to the one writer, each event inside its
    own CONSUMER span (each continues its own publisher's trace)."""

    async def run(consumer: str, items: Sequence[tuple[Envelope, EventHandler]]) -> list[bool]:
        events = [event for event, _ in items]
        with contextlib.ExitStack() as spans:
            for event in events:
                spans.enter_context(tracing.processing(event.subject, consumer, event))
            await writer.submit(events)
        for event in events:
            _observe_lag(event)
        return [True] * len(events)

    return run


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

    def batch_runner(db: MongoDatabase) -> BatchRunner:
        async def apply(events: Sequence[Envelope]) -> None:
            for event, refused in await project_batch(events, await active.for_writing(db)):
                _count_refused(event, refused)

        return _batched(CoalescingWriter(apply))

    return ServiceDefinition(
        name=SERVICE,
        store="mongo",
        mongo_setup=setup,
        # Every projection write is guarded by event id or per-source version: redelivery
        # changes nothing without an inbox (tests/integration/test_order_view_projection.py).
        mongo_inbox=False,
        problems=PROBLEMS,
        event_handlers={name: _live(p, active) for name, p in EVENT_HANDLERS.items()},
        mongo_batch_runner=batch_runner,
        route_handlers=[
            Router(
                path="/",
                route_handlers=ROUTES,
                dependencies={"generations": Provide(provide_generations, sync_to_thread=False)},
            )
        ],
    )
