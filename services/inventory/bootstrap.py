"""Wires the inventory service."""

from __future__ import annotations

from inventory import application
from inventory.adapters import MIGRATIONS, PostgresInventoryStore
from inventory.http import PROBLEMS, ROUTES
from polysaga.messaging.consumer import emitting
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="inventory",
        migrations=MIGRATIONS,
        store_adapter=PostgresInventoryStore,
        event_handlers={
            name: emitting(reaction, PostgresInventoryStore)
            for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        problems=PROBLEMS,
    )
