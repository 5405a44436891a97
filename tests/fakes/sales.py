"""The sales ledger in memory: each order counted once, the figures summed as the real one
sums them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from fakes import FakeUnitOfWork
from polysaga.unit_of_work import UnitOfWork
from sales.domain import CustomerSales, DaySales, ProductSales, Sale
from sales.ports import SalesLedger


class FakeSalesLedger:
    def __init__(self) -> None:
        self.sales: dict[str, Sale] = {}

    async def count(self, sale: Sale) -> bool:
        if sale.order_id in self.sales:
            return False
        self.sales[sale.order_id] = sale
        return True

    async def product(self, sku: str) -> ProductSales:
        lines = [line for s in self.sales.values() for line in s.lines if line.sku == sku]
        revenue = sum((line.revenue for line in lines), Decimal("0.00"))
        return ProductSales(sku, sum(line.units for line in lines), revenue)

    async def customer(self, user_id: str) -> CustomerSales:
        mine = [s for s in self.sales.values() if s.user_id == user_id]
        return CustomerSales(user_id, len(mine), sum((s.total for s in mine), Decimal("0.00")))

    async def day(self, day: date) -> DaySales:
        those = [s for s in self.sales.values() if s.day == day]
        revenue = sum((s.total for s in those), Decimal("0.00"))
        return DaySales(day, len(those), sum(s.units for s in those), revenue)


def sales_unit(store: FakeSalesLedger) -> FakeUnitOfWork[FakeSalesLedger]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is a SalesLedger, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeSalesLedger], UnitOfWork[SalesLedger]] = sales_unit
