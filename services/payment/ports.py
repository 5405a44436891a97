"""What payment's application needs from its store, as the service owns it: accounts whose
balance never goes below zero, and at most one payment record per order. ``payment.adapters``
implements it on PostgreSQL, the unit tests in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from payment.domain import PaymentStatus, PlacedOrder, ReservationClaim


@dataclass(frozen=True)
class Payment:
    order_id: str
    user_id: str
    amount: Decimal
    status: PaymentStatus
    reason: str | None
    created_at: datetime
    updated_at: datetime


class PaymentStore(Protocol):
    async def lock_order(self, order_id: str) -> None:
        """Serialise everything done for one order until this unit of work ends."""
        ...

    async def payment(self, order_id: str) -> Payment | None: ...

    async def learn_order(self, order: PlacedOrder) -> None:
        """Keep what OrderPlaced said: the only charge payment will make for this order."""
        ...

    async def placed_order(self, order_id: str) -> PlacedOrder | None: ...

    async def await_order(self, order_id: str, claim: ReservationClaim) -> None:
        """Keep a reservation that arrived before its OrderPlaced."""
        ...

    async def take_awaited(self, order_id: str) -> list[ReservationClaim]:
        """The reservations that waited for this order, oldest first; they wait no more."""
        ...

    async def prune_awaited(self, older_than_s: float) -> int:
        """Forget reservations whose order never came; how many."""
        ...

    async def debit(self, user_id: str, amount: Decimal) -> bool:
        """Take ``amount`` if the balance covers it; False (and nothing taken) otherwise."""
        ...

    async def credit(self, user_id: str, amount: Decimal) -> None: ...

    async def has_account(self, user_id: str) -> bool: ...

    async def record(
        self,
        order_id: str,
        user_id: str,
        amount: Decimal,
        status: PaymentStatus,
        reason: str | None = None,
    ) -> None:
        """Create the order's payment record, or move it to ``status`` (a later record keeps
        the first one's user and amount)."""
        ...

    async def set_balance(self, user_id: str, balance: Decimal) -> Decimal: ...

    async def balance(self, user_id: str) -> Decimal | None: ...
