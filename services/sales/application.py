"""The sales projection's one reaction; the handler map at the bottom says what it follows.
An order counts once it is confirmed, at the prices it was placed at (OrderConfirmed carries
its lines), on the day of its confirmation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from polysaga.events.envelope import Envelope
from sales.domain import Sale

READ_MODEL = "sales"


class SalesLedger(Protocol):
    """The port the projection counts sales through (``adapters.SalesStore``)."""

    async def count(self, sale: Sale) -> bool:
        """Add a sale to every total; False if its order was counted already."""
        ...


async def on_order_confirmed(event: Envelope, ledger: SalesLedger) -> bool:
    """True if the sale was counted now (False: its order had been counted already)."""
    return await ledger.count(Sale.of_confirmation(event.data, event.time))


Reaction = Callable[[Envelope, SalesLedger], Awaitable[bool]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderConfirmed": on_order_confirmed,
}
