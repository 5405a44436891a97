"""What the sales projection's application needs from its store, as the service owns it:
a ledger that counts each confirmed order once per generation and reads the figures back.
``sales.adapters`` implements it on PostgreSQL, the unit tests in memory."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from sales.domain import CustomerSales, DaySales, ProductSales, Sale


class SalesLedger(Protocol):
    async def count(self, sale: Sale) -> bool:
        """Add a sale to every total; False (nothing changed) if its order was counted
        already."""
        ...

    async def product(self, sku: str) -> ProductSales:
        """Zeros for a product never sold."""
        ...

    async def customer(self, user_id: str) -> CustomerSales: ...

    async def day(self, day: date) -> DaySales: ...
