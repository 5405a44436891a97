"""The catalog's store in memory, with the real store's version guard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from catalog.domain import Product, ProductEvent, ProductExistsError
from catalog.ports import ProductStore, StoredProduct
from fakes import FakeUnitOfWork
from polysaga.unit_of_work import UnitOfWork


class FakeProductStore:
    """Like the real store: an insert of a known SKU is refused; a save only lands if the
    product is still at the version it was read at. ``interfere`` makes another writer
    change the product between each read and the next save."""

    def __init__(self, interfere: int = 0) -> None:
        self.products: dict[str, StoredProduct] = {}
        self.published: list[ProductEvent] = []
        self.interfere = interfere

    async def get(self, sku: str) -> StoredProduct | None:
        stored = self.products.get(sku)
        if stored is not None and self.interfere:
            self.interfere -= 1
            bumped = replace(stored.product, version=stored.product.version + 1)
            self.products[sku] = StoredProduct(bumped, stored.outbox_seq)
        return stored

    async def add(self, product: Product, events: Sequence[ProductEvent]) -> None:
        if product.sku in self.products:
            raise ProductExistsError(product.sku)
        self.products[product.sku] = StoredProduct(product, len(events))
        self.published.extend(events)

    async def save(
        self, stored: StoredProduct, changed: Product, events: Sequence[ProductEvent]
    ) -> Product | None:
        current = self.products[changed.sku]
        if current.product.version != stored.product.version:
            return None
        self.products[changed.sku] = StoredProduct(changed, current.outbox_seq + len(events))
        self.published.extend(events)
        return changed


def catalog_unit(store: FakeProductStore) -> FakeUnitOfWork[FakeProductStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is a ProductStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeProductStore], UnitOfWork[ProductStore]] = catalog_unit
