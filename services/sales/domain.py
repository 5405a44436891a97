"""What the sales projection counts, free of I/O: a confirmed order becomes one Sale, counted
once per order; a day is the UTC date the order was confirmed; a digest lets two
generations of the projection be compared."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from polysaga.events import payloads as P
from polysaga.money import format_money, parse_money


@dataclass(frozen=True)
class SaleLine:
    sku: str
    units: int
    revenue: Decimal


@dataclass(frozen=True)
class Sale:
    """One confirmed order, as the projection counts it."""

    order_id: str
    user_id: str
    day: date
    lines: tuple[SaleLine, ...]
    total: Decimal

    @property
    def units(self) -> int:
        return sum(line.units for line in self.lines)

    @staticmethod
    def of_confirmation(data: P.OrderConfirmed, confirmed_at: datetime) -> Sale:
        """From OrderConfirmed: its lines carry the unit price the order was placed at."""
        merged: dict[str, SaleLine] = {}
        for item in data.items:
            sku, units = item.sku, item.quantity
            revenue = parse_money(item.unit_price) * units
            earlier = merged.get(sku)
            if earlier is not None:
                units, revenue = earlier.units + units, earlier.revenue + revenue
            merged[sku] = SaleLine(sku, units, revenue)
        return Sale(
            order_id=str(data.order_id),
            user_id=data.user_id,
            day=confirmed_at.astimezone(UTC).date(),
            lines=tuple(merged[sku] for sku in sorted(merged)),
            total=parse_money(data.total),
        )


@dataclass(frozen=True)
class ProductSales:
    sku: str
    units: int
    revenue: Decimal


@dataclass(frozen=True)
class CustomerSales:
    user_id: str
    orders: int
    spent: Decimal


@dataclass(frozen=True)
class DaySales:
    day: date
    orders: int
    units: int
    revenue: Decimal


def digest(
    products: Iterable[ProductSales],
    customers: Iterable[CustomerSales],
    days: Iterable[DaySales],
) -> str:
    """One hash over every figure, in a fixed order: equal digests, equal projections."""
    h = hashlib.sha256()
    for p in sorted(products, key=lambda x: x.sku):
        h.update(f"p|{p.sku}|{p.units}|{format_money(p.revenue)}\n".encode())
    for c in sorted(customers, key=lambda x: x.user_id):
        h.update(f"c|{c.user_id}|{c.orders}|{format_money(c.spent)}\n".encode())
    for d in sorted(days, key=lambda x: x.day):
        h.update(f"d|{d.day.isoformat()}|{d.orders}|{d.units}|{format_money(d.revenue)}\n".encode())
    return h.hexdigest()
