"""Payment's saga reactions against an in-memory PaymentStore."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import msgspec
import pytest

import event_samples as samples
from payment.adapters import Payment, PaymentStore
from payment.application import EVENT_HANDLERS, on_order_cancelled, on_stock_reserved
from payment.domain import PaymentStatus
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event

ORDER = "0d9a4f0e-5b0a-4c1e-9a51-3f6f2b8f9c11"
USER = "user-1"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class FakePaymentStore:
    """PaymentStore in memory: a debit only when the balance covers it, and the same
    ``record`` upsert as the real store (a later record keeps user and amount)."""

    def __init__(self, balances: dict[str, Decimal]) -> None:
        self.balances = dict(balances)
        self.payments: dict[str, Payment] = {}
        self.calls: list[str] = []

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


def as_store(fake: FakePaymentStore) -> PaymentStore:
    return cast(PaymentStore, fake)


def stock_reserved(total: str = "30.50", user_id: str = USER) -> Envelope[P.StockReserved]:
    payload = samples.stock_reserved(order_id=UUID(ORDER), user_id=user_id, total=total)
    return new_event(payload, trace_headers=TRACE)


def order_cancelled() -> Envelope[P.OrderCancelled]:
    return new_event(samples.order_cancelled(order_id=UUID(ORDER), user_id=USER, reason="x"))


def body(event: Envelope[Any]) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event.data)
    return data


@pytest.fixture
def fake() -> FakePaymentStore:
    return FakePaymentStore({USER: Decimal("100.00")})


def test_handler_map() -> None:
    assert {
        "StockReserved": on_stock_reserved,
        "OrderCancelled": on_order_cancelled,
    } == EVENT_HANDLERS


async def test_charges_when_funds_suffice(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved("30.50"), as_store(fake))

    assert event.name == "PaymentProcessed"
    assert event.version == 2
    assert body(event) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert event.trace_headers == TRACE
    assert fake.balances[USER] == Decimal("69.50")
    assert fake.payments[ORDER].status is PaymentStatus.CHARGED
    assert fake.payments[ORDER].amount == Decimal("30.50")


async def test_the_order_is_locked_before_its_payment_is_read(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved(), as_store(fake))

    assert fake.calls[:2] == [f"lock {ORDER}", f"read {ORDER}"]


async def test_the_whole_balance_may_be_spent(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved("100"), as_store(fake))

    assert event.name == "PaymentProcessed"
    assert body(event)["amount"] == "100.00"
    assert fake.balances[USER] == Decimal("0")


async def test_insufficient_funds_fails_and_takes_nothing(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved("100.01"), as_store(fake))

    assert event.name == "PaymentFailed"
    assert body(event) == {"order_id": ORDER, "user_id": USER, "reason": "insufficient_funds"}
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_no_account_fails_with_no_account(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved(user_id="stranger"), as_store(fake))

    assert event.name == "PaymentFailed"
    assert body(event)["reason"] == "no_account"
    assert fake.payments[ORDER].reason == "no_account"


async def test_at_most_one_charge_per_order(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("30.50"), as_store(fake))

    assert await on_stock_reserved(stock_reserved("30.50"), as_store(fake)) == []
    assert fake.balances[USER] == Decimal("69.50")


async def test_a_failed_payment_is_not_retried_by_a_later_event(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("500"), as_store(fake))
    fake.balances[USER] = Decimal("1000")

    assert await on_stock_reserved(stock_reserved("500"), as_store(fake)) == []
    assert fake.balances[USER] == Decimal("1000")


async def test_cancel_after_charge_refunds_exactly_once(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("30.50"), as_store(fake))

    [refund] = await on_order_cancelled(order_cancelled(), as_store(fake))
    again = await on_order_cancelled(order_cancelled(), as_store(fake))

    assert refund.name == "PaymentRefunded"
    assert body(refund) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert again == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.REFUNDED


async def test_cancel_after_failed_payment_refunds_nothing(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("500"), as_store(fake))

    assert await on_order_cancelled(order_cancelled(), as_store(fake)) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_cancel_before_charge_leaves_a_tombstone(fake: FakePaymentStore) -> None:
    assert await on_order_cancelled(order_cancelled(), as_store(fake)) == []
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED

    assert await on_stock_reserved(stock_reserved("30.50"), as_store(fake)) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED
