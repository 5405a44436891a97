"""Wires the payment service."""

from __future__ import annotations

import asyncio
import logging

from payment import application
from payment.adapters import MIGRATIONS, PostgresPaymentStore
from payment.http import PROBLEMS, ROUTES
from polysaga.messaging.consumer import emitting
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.schedule import run_periodically
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)


async def prune_awaited_orders(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Forgets reservations whose OrderPlaced never came (forged ones, mostly), once they
    are older than any delivery of it could be: the inbox's retention."""

    async def prune() -> None:
        uow = runtime.unit_of_work()
        async with uow:
            pruned = await uow.store.prune_awaited(runtime.settings.inbox_retention_s)
            await uow.commit()
        if pruned:
            log.warning("forgot %d reservations whose order was never placed", pruned)

    await run_periodically(
        stop, runtime.settings.prune_interval_s, prune, name="awaited orders pruning"
    )


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="payment",
        migrations=MIGRATIONS,
        store_adapter=PostgresPaymentStore,
        event_handlers={
            name: emitting(reaction, PostgresPaymentStore)
            for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        problems=PROBLEMS,
        background_loops=[prune_awaited_orders],
    )
