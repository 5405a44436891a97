"""Catalog commands: add a product, change its name or price. A change is an optimistic
read-decide-write on one document, tried again when another writer got there first. The
catalog reacts to no events, so its handler map is empty."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from catalog.adapters import ProductStore
from catalog.domain import ConcurrentChangeError, Product, ProductNotFoundError
from polysaga.events.envelope import Envelope

CHANGE_ATTEMPTS = 5


async def add_product(
    store: ProductStore, sku: str, name: str, price: Decimal, now: datetime
) -> Product:
    product, events = Product.create(sku, name, price, now)
    await store.add(product, events)
    return product


async def change_product(
    store: ProductStore,
    sku: str,
    now: datetime,
    *,
    name: str | None = None,
    price: Decimal | None = None,
    attempts: int = CHANGE_ATTEMPTS,
) -> Product:
    for _ in range(attempts):
        stored = await store.get(sku)
        if stored is None:
            raise ProductNotFoundError(sku)
        changed, events = stored.product.change(now, name=name, price=price)
        if not events:
            return stored.product
        saved = await store.save(stored, changed, events)
        if saved is not None:
            return saved
    raise ConcurrentChangeError(sku)


Reaction = Callable[[Envelope[Any], Any], Awaitable[None]]

EVENT_HANDLERS: dict[str, Reaction] = {}
