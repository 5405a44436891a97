"""Catalog commands against an in-memory ProductStore with the real store's version guard:
a change that loses a race is decided again on fresh state, and gives up after a few
tries without writing anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import pytest

from catalog.adapters import ProductStore, StoredProduct
from catalog.application import EVENT_HANDLERS, add_product, change_product
from catalog.domain import (
    ConcurrentChangeError,
    Product,
    ProductEvent,
    ProductExistsError,
    ProductNotFoundError,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


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


async def test_a_lost_race_is_decided_again_on_fresh_state() -> None:
    fake = FakeProductStore()
    store = cast(ProductStore, fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)
    fake.interfere = 2

    changed = await change_product(store, "mug", NOW, price=Decimal("11.00"))

    assert changed.version == 4  # two other writers moved it to 3 first
    assert [type(e).__name__ for e in fake.published] == ["ProductCreated", "ProductPriceChanged"]
    assert fake.published[-1].version == 4


async def test_endless_races_give_up_and_write_nothing() -> None:
    fake = FakeProductStore()
    store = cast(ProductStore, fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)
    fake.interfere = 100

    with pytest.raises(ConcurrentChangeError):
        await change_product(store, "mug", NOW, name="Cup", attempts=3)

    assert [type(e).__name__ for e in fake.published] == ["ProductCreated"]
    assert fake.products["mug"].product.name == "Mug"


async def test_a_change_to_the_same_values_writes_nothing() -> None:
    fake = FakeProductStore()
    store = cast(ProductStore, fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)

    unchanged = await change_product(store, "mug", NOW, price=Decimal("10"))

    assert unchanged.version == 1
    assert len(fake.published) == 1


async def test_unknown_and_duplicate_products() -> None:
    store = cast(ProductStore, FakeProductStore())
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)

    with pytest.raises(ProductExistsError):
        await add_product(store, "mug", "Other", Decimal("1.00"), NOW)
    with pytest.raises(ProductNotFoundError):
        await change_product(store, "cup", NOW, name="Cup")


def test_the_catalog_consumes_nothing() -> None:
    assert EVENT_HANDLERS == {}
