"""What the catalog's application needs from its store, as the service owns it: one record
per product, each change written with the events it causes in one atomic write, guarded by
the version it was read at. ``catalog.adapters`` implements it on MongoDB, the unit tests in
memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from catalog.domain import Product, ProductEvent


@dataclass(frozen=True)
class StoredProduct:
    product: Product
    outbox_seq: int  # the sequence of the last event the record staged


class ProductStore(Protocol):
    async def get(self, sku: str) -> StoredProduct | None: ...

    async def add(self, product: Product, events: Sequence[ProductEvent]) -> None:
        """A new product and its events; raises ProductExistsError for a known SKU."""
        ...

    async def save(
        self, stored: StoredProduct, changed: Product, events: Sequence[ProductEvent]
    ) -> Product | None:
        """The change and its events if the product is still as ``stored``; None if someone
        changed it first."""
        ...
