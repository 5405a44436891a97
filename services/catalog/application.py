"""Catalog commands and queries, each in one unit of work over the product store
(``catalog.ports``): add a product, change its name or price, read one. A change is an
optimistic read-decide-write on one record, tried again when another writer got there first.
The catalog reacts to no events, so its handler map is empty."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from catalog.domain import ConcurrentChangeError, Product, ProductNotFoundError
from catalog.ports import ProductStore
from polysaga.events.envelope import Envelope
from polysaga.unit_of_work import UnitOfWork

CHANGE_ATTEMPTS = 5

CatalogUnit = UnitOfWork[ProductStore]


async def add_product(
    uow: CatalogUnit, sku: str, name: str, price: Decimal, now: datetime
) -> Product:
    product, events = Product.create(sku, name, price, now)
    async with uow:
        await uow.store.add(product, events)
        await uow.commit()
    return product


async def get_product(uow: CatalogUnit, sku: str) -> Product:
    async with uow:
        stored = await uow.store.get(sku)
    if stored is None:
        raise ProductNotFoundError(sku)
    return stored.product


async def change_product(
    uow: CatalogUnit,
    sku: str,
    now: datetime,
    *,
    name: str | None = None,
    price: Decimal | None = None,
    attempts: int = CHANGE_ATTEMPTS,
) -> Product:
    async with uow:
        for _ in range(attempts):
            stored = await uow.store.get(sku)
            if stored is None:
                raise ProductNotFoundError(sku)
            changed, events = stored.product.change(now, name=name, price=price)
            if not events:
                return stored.product
            saved = await uow.store.save(stored, changed, events)
            if saved is not None:
                await uow.commit()
                return saved
    raise ConcurrentChangeError(sku)


Reaction = Callable[[Envelope[Any], Any], Awaitable[None]]

EVENT_HANDLERS: dict[str, Reaction] = {}
