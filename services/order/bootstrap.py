"""Wires the order service: its migrations, event handlers, routes and background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from order import application
from order.adapters import MIGRATIONS, OrderStore
from order.http import ROUTES
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import EventHandler
from polysaga.persistence.database import is_retryable
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)


def _consume(reaction: application.SagaReaction, snapshot_every: int) -> EventHandler:
    async def handle(event: Envelope, conn: AsyncConnection) -> None:
        await reaction(event, OrderStore(conn, snapshot_every), datetime.now(UTC))

    return handle


async def deadline_sweeper(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Cancels orders still pending after their deadline."""
    while not stop.is_set():
        try:
            async with runtime.transaction() as conn:
                store = OrderStore(conn, runtime.settings.snapshot_every)
                cancelled = await application.cancel_overdue(store, datetime.now(UTC))
            if cancelled:
                log.info("cancelled %d overdue orders", cancelled)
                continue
        except Exception as exc:
            if not is_retryable(exc):
                log.exception("deadline sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), runtime.settings.deadline_sweep_interval_s)


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="order",
        migrations=MIGRATIONS,
        event_handlers={
            name: _consume(reaction, settings.snapshot_every)
            for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        background_loops=[deadline_sweeper],
    )
