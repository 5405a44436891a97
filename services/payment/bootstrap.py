"""Wires the payment service."""

from __future__ import annotations

from payment import application
from payment.adapters import MIGRATIONS, PostgresPaymentStore
from payment.http import PROBLEMS, ROUTES
from polysaga.messaging.consumer import emitting
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings


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
    )
