"""A product and what each change to it publishes. No I/O here.

Versioning rule: a product starts at version 1 and every PATCH that changes something
moves it up by exactly one, whatever it changed. A PATCH that changes both the price and
the name emits ProductPriceChanged then ProductRenamed, both carrying that one new version;
their order is kept by the per-document outbox sequence. A PATCH that changes nothing
emits nothing and keeps the version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from polysaga.events import payloads as P
from polysaga.money import format_money


class ProductNotFoundError(LookupError):
    pass


class ProductExistsError(Exception):
    """A product with this SKU is already in the catalog."""


class ConcurrentChangeError(Exception):
    """The product kept changing under us; the caller may try again."""


# One fact about a product: the body of a declared event type.
ProductEvent = P.ProductCreated | P.ProductPriceChanged | P.ProductRenamed


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def create(
        sku: str, name: str, price: Decimal, now: datetime
    ) -> tuple[Product, list[ProductEvent]]:
        product = Product(sku, name, price, 1, now, now)
        created = P.ProductCreated(sku=sku, name=name, price=format_money(price), version=1)
        return product, [created]

    def change(
        self, now: datetime, *, name: str | None = None, price: Decimal | None = None
    ) -> tuple[Product, list[ProductEvent]]:
        """The changed product and its events, in the order they are published."""
        new_price = self.price if price is None else price
        new_name = self.name if name is None else name
        if new_price == self.price and new_name == self.name:
            return self, []
        changed = replace(
            self, name=new_name, price=new_price, version=self.version + 1, updated_at=now
        )
        events: list[ProductEvent] = []
        if new_price != self.price:
            events.append(
                P.ProductPriceChanged(
                    sku=self.sku,
                    price=format_money(new_price),
                    previous_price=format_money(self.price),
                    version=changed.version,
                )
            )
        if new_name != self.name:
            events.append(
                P.ProductRenamed(
                    sku=self.sku,
                    name=new_name,
                    previous_name=self.name,
                    version=changed.version,
                )
            )
        return changed, events
