"""The sales projection's reaction and queries over its ledger (``sales.ports``); the
handler map at the bottom says what it follows. An order counts once it is confirmed, at the
prices it was placed at (OrderConfirmed carries its lines), on the day of its confirmation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope
from polysaga.unit_of_work import UnitOfWork
from sales.domain import CustomerSales, DaySales, ProductSales, Sale
from sales.ports import SalesLedger

READ_MODEL = "sales"

SalesUnit = UnitOfWork[SalesLedger]


class BadDayError(ValueError):
    """Not a calendar day written YYYY-MM-DD."""


def parse_day(text: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadDayError(repr(text)) from None


async def on_order_confirmed(event: Envelope[P.OrderConfirmed], ledger: SalesLedger) -> bool:
    """True if the sale was counted now (False: its order had been counted already)."""
    return await ledger.count(Sale.of_confirmation(event.data, event.time))


async def product_sales(uow: SalesUnit, sku: str) -> ProductSales:
    async with uow:
        return await uow.store.product(sku)


async def customer_sales(uow: SalesUnit, user_id: str) -> CustomerSales:
    async with uow:
        return await uow.store.customer(user_id)


async def day_sales(uow: SalesUnit, day: date) -> DaySales:
    async with uow:
        return await uow.store.day(day)


Reaction = Callable[[Envelope[Any], SalesLedger], Awaitable[bool]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderConfirmed": on_order_confirmed,
}
