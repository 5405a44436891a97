"""Catalog commands against an in-memory ProductStore with the real store's version guard:
a change that loses a race is decided again on fresh state, and gives up after a few
tries without writing anything."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from catalog.application import EVENT_HANDLERS, add_product, change_product, get_product
from catalog.domain import ConcurrentChangeError, ProductExistsError, ProductNotFoundError
from fakes import FakeUnitOfWork
from fakes.catalog import FakeProductStore

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_a_lost_race_is_decided_again_on_fresh_state() -> None:
    fake = FakeProductStore()
    store = FakeUnitOfWork(fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)
    fake.interfere = 2

    changed = await change_product(store, "mug", NOW, price=Decimal("11.00"))

    assert changed.version == 4  # two other writers moved it to 3 first
    assert [type(e).__name__ for e in fake.published] == ["ProductCreated", "ProductPriceChanged"]
    assert fake.published[-1].version == 4


async def test_endless_races_give_up_and_write_nothing() -> None:
    fake = FakeProductStore()
    store = FakeUnitOfWork(fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)
    fake.interfere = 100

    with pytest.raises(ConcurrentChangeError):
        await change_product(store, "mug", NOW, name="Cup", attempts=3)

    assert [type(e).__name__ for e in fake.published] == ["ProductCreated"]
    assert fake.products["mug"].product.name == "Mug"
    assert store.commits == 1  # the add; the change gave up without committing


async def test_a_change_to_the_same_values_writes_nothing() -> None:
    fake = FakeProductStore()
    store = FakeUnitOfWork(fake)
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)

    unchanged = await change_product(store, "mug", NOW, price=Decimal("10"))

    assert unchanged.version == 1
    assert len(fake.published) == 1


async def test_unknown_and_duplicate_products() -> None:
    store = FakeUnitOfWork(FakeProductStore())
    await add_product(store, "mug", "Mug", Decimal("10.00"), NOW)

    with pytest.raises(ProductExistsError):
        await add_product(store, "mug", "Other", Decimal("1.00"), NOW)
    with pytest.raises(ProductNotFoundError):
        await change_product(store, "cup", NOW, name="Cup")
    with pytest.raises(ProductNotFoundError):
        await get_product(store, "cup")
    assert (await get_product(store, "mug")).name == "Mug"


def test_the_catalog_consumes_nothing() -> None:
    assert EVENT_HANDLERS == {}
