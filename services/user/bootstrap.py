"""Wires the user service: its migrations and routes (it consumes no events)."""

from __future__ import annotations

from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings
from user.adapters import MIGRATIONS, PostgresUserStore
from user.http import PROBLEMS, ROUTES


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="user",
        migrations=MIGRATIONS,
        store_adapter=PostgresUserStore,
        route_handlers=ROUTES,
        problems=PROBLEMS,
    )
