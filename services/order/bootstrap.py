"""Wires the order service: its store adapter, migrations, event handlers, routes, the
problems its errors are, and its background loops."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from order import application
from order.adapters import MIGRATIONS, PRUNE_IDEMPOTENCY_KEYS, PostgresOrderStore
from order.http import PROBLEMS, ROUTES
from polysaga import metrics
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import EventHandler
from polysaga.persistence.pruning import delete_in_chunks
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.schedule import run_periodically
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)


def _consume(reaction: application.SagaReaction, snapshot_every: int) -> EventHandler:
    async def handle(event: Envelope[Any], conn: AsyncConnection) -> None:
        await reaction(event, PostgresOrderStore(conn, snapshot_every), datetime.now(UTC))

    return handle


async def deadline_sweeper(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Cancels orders still pending after their deadline."""

    async def sweep() -> bool:
        cancelled = await application.cancel_overdue(runtime.unit_of_work(), datetime.now(UTC))
        if cancelled:
            log.info("cancelled %d overdue orders", cancelled)
        return cancelled > 0  # a full batch may leave more behind: sweep again at once

    await run_periodically(
        stop, runtime.settings.deadline_sweep_interval_s, sweep, name="deadline sweep"
    )


async def idempotency_key_pruner(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Deletes idempotency keys older than their retention, so the table stops growing."""

    async def prune() -> None:
        pruned = await delete_in_chunks(
            runtime.engine, PRUNE_IDEMPOTENCY_KEYS, runtime.settings.idempotency_key_retention_s
        )
        if pruned:
            log.info("pruned %d idempotency keys", pruned)

    await run_periodically(
        stop, runtime.settings.prune_interval_s, prune, name="idempotency key pruning"
    )


SAGA_GAUGE_INTERVAL_S = 2.0


async def saga_gauges(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Exports sagas in flight and stuck (PENDING past the deadline) from the status table,
    so the gauges are right in whichever order process scrapes them, after restarts too."""

    async def refresh() -> None:
        in_flight, stuck = await application.saga_counts(runtime.unit_of_work(), datetime.now(UTC))
        metrics.SAGAS_IN_FLIGHT.set(in_flight)
        metrics.SAGAS_STUCK.set(stuck)

    await run_periodically(stop, SAGA_GAUGE_INTERVAL_S, refresh, name="saga gauge refresh")


def build(settings: ServiceSettings) -> ServiceDefinition:
    def store(conn: AsyncConnection) -> PostgresOrderStore:
        return PostgresOrderStore(conn, settings.snapshot_every)

    return ServiceDefinition(
        name="order",
        migrations=MIGRATIONS,
        store_adapter=store,
        event_handlers={
            name: _consume(reaction, settings.snapshot_every)
            for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        problems=PROBLEMS,
        background_loops=[deadline_sweeper, saga_gauges, idempotency_key_pruner],
    )
