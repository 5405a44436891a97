"""Payment's saga reactions against an in-memory PaymentStore."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest

import event_samples as samples
from fakes import FakeUnitOfWork
from fakes.payment import FakePaymentStore
from payment import application
from payment.application import EVENT_HANDLERS, on_order_cancelled, on_stock_reserved
from payment.domain import PaymentStatus
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event

ORDER = "0d9a4f0e-5b0a-4c1e-9a51-3f6f2b8f9c11"
USER = "user-1"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


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
    [event] = await on_stock_reserved(stock_reserved("30.50"), fake)

    assert event.name == "PaymentProcessed"
    assert event.version == 2
    assert body(event) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert event.trace_headers == TRACE
    assert fake.balances[USER] == Decimal("69.50")
    assert fake.payments[ORDER].status is PaymentStatus.CHARGED
    assert fake.payments[ORDER].amount == Decimal("30.50")


async def test_the_order_is_locked_before_its_payment_is_read(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved(), fake)

    assert fake.calls[:2] == [f"lock {ORDER}", f"read {ORDER}"]


async def test_the_whole_balance_may_be_spent(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved("100"), fake)

    assert event.name == "PaymentProcessed"
    assert body(event)["amount"] == "100.00"
    assert fake.balances[USER] == Decimal("0")


async def test_insufficient_funds_fails_and_takes_nothing(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved("100.01"), fake)

    assert event.name == "PaymentFailed"
    assert body(event) == {"order_id": ORDER, "user_id": USER, "reason": "insufficient_funds"}
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_no_account_fails_with_no_account(fake: FakePaymentStore) -> None:
    [event] = await on_stock_reserved(stock_reserved(user_id="stranger"), fake)

    assert event.name == "PaymentFailed"
    assert body(event)["reason"] == "no_account"
    assert fake.payments[ORDER].reason == "no_account"


async def test_at_most_one_charge_per_order(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("30.50"), fake)

    assert await on_stock_reserved(stock_reserved("30.50"), fake) == []
    assert fake.balances[USER] == Decimal("69.50")


async def test_a_failed_payment_is_not_retried_by_a_later_event(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("500"), fake)
    fake.balances[USER] = Decimal("1000")

    assert await on_stock_reserved(stock_reserved("500"), fake) == []
    assert fake.balances[USER] == Decimal("1000")


async def test_cancel_after_charge_refunds_exactly_once(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("30.50"), fake)

    [refund] = await on_order_cancelled(order_cancelled(), fake)
    again = await on_order_cancelled(order_cancelled(), fake)

    assert refund.name == "PaymentRefunded"
    assert body(refund) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert again == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.REFUNDED


async def test_cancel_after_failed_payment_refunds_nothing(fake: FakePaymentStore) -> None:
    await on_stock_reserved(stock_reserved("500"), fake)

    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_cancel_before_charge_leaves_a_tombstone(fake: FakePaymentStore) -> None:
    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED

    assert await on_stock_reserved(stock_reserved("30.50"), fake) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED


async def test_account_commands_and_queries_each_run_in_one_unit(fake: FakePaymentStore) -> None:
    unit = FakeUnitOfWork(fake)

    assert await application.set_balance(unit, "newcomer", Decimal("5.00")) == Decimal("5.00")
    assert await application.balance_of(unit, "newcomer") == Decimal("5.00")
    with pytest.raises(application.NoAccountError):
        await application.balance_of(unit, "nobody")
    assert await application.payments_of(unit, ORDER) == []
    await on_stock_reserved(stock_reserved("1.00", user_id="newcomer"), fake)
    [payment] = await application.payments_of(unit, ORDER)
    assert payment.status is PaymentStatus.CHARGED
    assert (unit.commits, unit.rollbacks) == (1, 4)
