"""Wires the sales projection: its store adapter, migrations, its reaction (with the lag it
measures) and its routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga import metrics
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import EventHandler
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings
from sales import application
from sales.adapters import MIGRATIONS, PostgresSalesStore
from sales.http import PROBLEMS, ROUTES


def _consume(reaction: application.Reaction) -> EventHandler:
    async def handle(event: Envelope[Any], conn: AsyncConnection) -> None:
        if await reaction(event, PostgresSalesStore(conn)):
            lag = (datetime.now(UTC) - event.time).total_seconds()
            metrics.CONSISTENCY_LAG.labels(read_model=application.READ_MODEL).observe(max(0.0, lag))

    return handle


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="sales",
        migrations=MIGRATIONS,
        store_adapter=PostgresSalesStore,
        event_handlers={
            name: _consume(reaction) for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        problems=PROBLEMS,
    )
