"""Wires the catalog service: MongoDB with the products collection's embedded outbox."""

from __future__ import annotations

from catalog.adapters import COLLECTION, ensure_indexes
from catalog.http import ROUTES
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="catalog",
        store="mongo",
        outbox_collections=[COLLECTION],
        mongo_setup=ensure_indexes,
        route_handlers=ROUTES,
    )
