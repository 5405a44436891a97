"""Payment's store in memory: a debit only when the balance covers it, and the same
``record`` upsert as the real store (a later record keeps user and amount)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from fakes import FakeUnitOfWork
from payment.domain import PaymentStatus, PlacedOrder, ReservationClaim
from payment.ports import Payment, PaymentStore
from polysaga.unit_of_work import UnitOfWork

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class FakePaymentStore:
    def __init__(self, balances: dict[str, Decimal] | None = None) -> None:
        self.balances = dict(balances or {})
        self.payments: dict[str, Payment] = {}
        self.calls: list[str] = []
        self.orders: dict[str, PlacedOrder] = {}
        self.awaited: dict[str, list[ReservationClaim]] = {}

    async def learn_order(self, order: PlacedOrder) -> None:
        self.orders.setdefault(order.order_id, order)

    async def placed_order(self, order_id: str) -> PlacedOrder | None:
        self.calls.append(f"know {order_id}")
        return self.orders.get(order_id)

    async def await_order(self, order_id: str, claim: ReservationClaim) -> None:
        waiting = self.awaited.setdefault(order_id, [])
        if claim.event_id not in {c.event_id for c in waiting}:
            waiting.append(claim)

    async def take_awaited(self, order_id: str) -> list[ReservationClaim]:
        return self.awaited.pop(order_id, [])

    async def prune_awaited(self, older_than_s: float) -> int:
        # No clock in memory: every waiting reservation counts as old enough.
        pruned = sum(len(claims) for claims in self.awaited.values())
        self.awaited.clear()
        return pruned

    async def lock_order(self, order_id: str) -> None:
        self.calls.append(f"lock {order_id}")

    async def payment(self, order_id: str) -> Payment | None:
        self.calls.append(f"read {order_id}")
        return self.payments.get(order_id)

    async def debit(self, user_id: str, amount: Decimal) -> bool:
        if user_id not in self.balances or self.balances[user_id] < amount:
            return False
        self.balances[user_id] -= amount
        return True

    async def credit(self, user_id: str, amount: Decimal) -> None:
        if user_id in self.balances:
            self.balances[user_id] += amount

    async def has_account(self, user_id: str) -> bool:
        return user_id in self.balances

    async def record(
        self,
        order_id: str,
        user_id: str,
        amount: Decimal,
        status: PaymentStatus,
        reason: str | None = None,
    ) -> None:
        earlier = self.payments.get(order_id)
        if earlier is None:
            self.payments[order_id] = Payment(
                order_id, user_id, amount, status, reason, EPOCH, EPOCH
            )
        else:
            self.payments[order_id] = Payment(
                order_id,
                earlier.user_id,
                earlier.amount,
                status,
                reason or earlier.reason,
                earlier.created_at,
                EPOCH,
            )

    async def set_balance(self, user_id: str, balance: Decimal) -> Decimal:
        self.balances[user_id] = balance
        return balance

    async def balance(self, user_id: str) -> Decimal | None:
        return self.balances.get(user_id)


def payment_unit(store: FakePaymentStore) -> FakeUnitOfWork[FakePaymentStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is a PaymentStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakePaymentStore], UnitOfWork[PaymentStore]] = payment_unit
