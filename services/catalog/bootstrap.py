"""Wires the catalog service: MongoDB with the products collection's embedded outbox."""

from __future__ import annotations

from catalog.adapters import COLLECTION, MongoProductStore, ensure_indexes
from catalog.http import PROBLEMS, ROUTES
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings


def build(settings: ServiceSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="catalog",
        store="mongo",
        outbox_collections=[COLLECTION],
        mongo_setup=ensure_indexes,
        store_adapter=MongoProductStore,
        route_handlers=ROUTES,
        problems=PROBLEMS,
    )
