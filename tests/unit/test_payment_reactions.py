"""Payment's saga reactions against an in-memory PaymentStore."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest
from prometheus_client import REGISTRY

import event_samples as samples
from fakes import FakeUnitOfWork
from fakes.payment import FakePaymentStore
from payment import application
from payment.application import (
    EVENT_HANDLERS,
    on_order_cancelled,
    on_order_placed,
    on_payment_rejected,
    on_stock_reserved,
)
from payment.domain import PaymentStatus
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event

ORDER = "0d9a4f0e-5b0a-4c1e-9a51-3f6f2b8f9c11"
USER = "user-1"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def stock_reserved(total: str = "30.50", user_id: str = USER) -> Envelope[P.StockReserved]:
    payload = samples.stock_reserved(order_id=UUID(ORDER), user_id=user_id, total=total)
    return new_event(payload, trace_headers=TRACE)


def order_placed(total: str = "30.50", user_id: str = USER) -> Envelope[P.OrderPlaced]:
    return new_event(samples.order_placed(order_id=UUID(ORDER), user_id=user_id, total=total))


def order_cancelled() -> Envelope[P.OrderCancelled]:
    return new_event(samples.order_cancelled(order_id=UUID(ORDER), user_id=USER, reason="x"))


def payment_rejected(amount: str = "30.50", user_id: str = USER) -> Envelope[P.PaymentRejected]:
    rejected = samples.payment_rejected(
        order_id=UUID(ORDER), user_id=user_id, amount=amount, reason="amount_mismatch"
    )
    return new_event(rejected)


async def reserve(
    fake: FakePaymentStore, total: str = "30.50", user_id: str = USER
) -> list[Envelope[Any]]:
    """The order is placed (payment learns it), then its stock is reserved."""
    assert await on_order_placed(order_placed(total, user_id), fake) == []
    return await on_stock_reserved(stock_reserved(total, user_id), fake)


def body(event: Envelope[Any]) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event.data)
    return data


def rejected(event_type: str, reason: str) -> float:
    labels = {"event_type": event_type, "reason": reason}
    return REGISTRY.get_sample_value("polysaga_events_rejected_total", labels) or 0.0


@pytest.fixture
def fake() -> FakePaymentStore:
    return FakePaymentStore({USER: Decimal("100.00")})


def test_handler_map() -> None:
    assert {
        "OrderPlaced": on_order_placed,
        "StockReserved": on_stock_reserved,
        "OrderCancelled": on_order_cancelled,
        "PaymentRejected": on_payment_rejected,
    } == EVENT_HANDLERS


async def test_charges_when_funds_suffice(fake: FakePaymentStore) -> None:
    [event] = await reserve(fake, "30.50")

    assert event.name == "PaymentProcessed"
    assert event.version == 2
    assert body(event) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert event.trace_headers == TRACE
    assert fake.balances[USER] == Decimal("69.50")
    assert fake.payments[ORDER].status is PaymentStatus.CHARGED
    assert fake.payments[ORDER].amount == Decimal("30.50")


async def test_the_order_is_locked_before_anything_is_read(fake: FakePaymentStore) -> None:
    await reserve(fake)

    assert fake.calls[-3:] == [f"lock {ORDER}", f"know {ORDER}", f"read {ORDER}"]


async def test_the_whole_balance_may_be_spent(fake: FakePaymentStore) -> None:
    [event] = await reserve(fake, "100")

    assert event.name == "PaymentProcessed"
    assert body(event)["amount"] == "100.00"
    assert fake.balances[USER] == Decimal("0")


async def test_insufficient_funds_fails_and_takes_nothing(fake: FakePaymentStore) -> None:
    [event] = await reserve(fake, "100.01")

    assert event.name == "PaymentFailed"
    assert body(event) == {"order_id": ORDER, "user_id": USER, "reason": "insufficient_funds"}
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_no_account_fails_with_no_account(fake: FakePaymentStore) -> None:
    [event] = await reserve(fake, user_id="stranger")

    assert event.name == "PaymentFailed"
    assert body(event)["reason"] == "no_account"
    assert fake.payments[ORDER].reason == "no_account"


async def test_at_most_one_charge_per_order(fake: FakePaymentStore) -> None:
    await reserve(fake, "30.50")

    assert await reserve(fake, "30.50") == []
    assert fake.balances[USER] == Decimal("69.50")


async def test_a_failed_payment_is_not_retried_by_a_later_event(fake: FakePaymentStore) -> None:
    await reserve(fake, "500")
    fake.balances[USER] = Decimal("1000")

    assert await reserve(fake, "500") == []
    assert fake.balances[USER] == Decimal("1000")


async def test_cancel_after_charge_refunds_exactly_once(fake: FakePaymentStore) -> None:
    await reserve(fake, "30.50")

    [refund] = await on_order_cancelled(order_cancelled(), fake)
    again = await on_order_cancelled(order_cancelled(), fake)

    assert refund.name == "PaymentRefunded"
    assert body(refund) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert again == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.REFUNDED


async def test_cancel_after_failed_payment_refunds_nothing(fake: FakePaymentStore) -> None:
    await reserve(fake, "500")

    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.FAILED


async def test_cancel_before_charge_leaves_a_tombstone(fake: FakePaymentStore) -> None:
    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED

    assert await reserve(fake, "30.50") == []
    assert fake.balances[USER] == Decimal("100.00")
    assert fake.payments[ORDER].status is PaymentStatus.CANCELLED


# --- issue 14, class 7: money moves only as the order was placed --------------------------


async def test_a_reservation_for_an_order_never_placed_moves_no_money(
    fake: FakePaymentStore,
) -> None:
    for total in ("5.00", "5.00", "7.25"):  # a producer's own credentials, again and again
        assert await on_stock_reserved(stock_reserved(total), fake) == []
    assert fake.balances[USER] == Decimal("100.00")
    assert ORDER not in fake.payments
    assert len(fake.awaited[ORDER]) == 3  # waiting for an OrderPlaced that never comes


async def test_a_reservation_before_its_order_is_charged_when_the_order_comes(
    fake: FakePaymentStore,
) -> None:
    assert await on_stock_reserved(stock_reserved("30.50"), fake) == []
    assert fake.balances[USER] == Decimal("100.00")

    [event] = await on_order_placed(order_placed("30.50"), fake)
    assert event.name == "PaymentProcessed" and body(event)["amount"] == "30.50"
    assert event.trace_headers == TRACE  # the reservation's trace goes on
    assert fake.balances[USER] == Decimal("69.50")
    assert await on_order_placed(order_placed("30.50"), fake) == []  # redelivered


@pytest.mark.parametrize(
    ("total", "user_id", "reason"),
    [
        pytest.param("5.00", USER, "total_mismatch", id="less"),
        pytest.param("99.00", USER, "total_mismatch", id="more"),
        pytest.param("0", USER, "total_mismatch", id="nothing"),
        pytest.param("30.50", "someone-else", "user_mismatch", id="another-user"),
    ],
)
@pytest.mark.parametrize("order_first", [True, False], ids=["order-first", "reservation-first"])
async def test_a_reservation_that_does_not_match_its_order_is_refused_and_counted(
    fake: FakePaymentStore, total: str, user_id: str, reason: str, order_first: bool
) -> None:
    fake.balances["someone-else"] = Decimal("100.00")
    before = rejected("StockReserved", reason)
    forged = stock_reserved(total, user_id)
    if order_first:
        assert await on_order_placed(order_placed("30.50"), fake) == []
        assert await on_stock_reserved(forged, fake) == []
    else:
        assert await on_stock_reserved(forged, fake) == []
        assert await on_order_placed(order_placed("30.50"), fake) == []
    assert rejected("StockReserved", reason) == before + 1
    assert fake.balances == {USER: Decimal("100.00"), "someone-else": Decimal("100.00")}
    assert ORDER not in fake.payments

    # The genuine reservation is still charged, the order's total to the order's user.
    [event] = await on_stock_reserved(stock_reserved("30.50"), fake)
    assert body(event) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}


async def test_a_charge_the_order_service_rejects_is_refunded_once(
    fake: FakePaymentStore,
) -> None:
    await reserve(fake, "30.50")
    [refund] = await on_payment_rejected(payment_rejected("30.50"), fake)
    assert refund.name == "PaymentRefunded"
    assert body(refund) == {"order_id": ORDER, "user_id": USER, "amount": "30.50"}
    assert fake.balances[USER] == Decimal("100.00")
    assert await on_payment_rejected(payment_rejected("30.50"), fake) == []
    assert await on_order_cancelled(order_cancelled(), fake) == []  # refunded already
    assert fake.balances[USER] == Decimal("100.00")


@pytest.mark.parametrize(
    ("amount", "user_id"),
    [("5.00", USER), ("30.50", "someone-else")],
    ids=["other-amount", "other-user"],
)
async def test_a_rejection_of_some_other_charge_moves_no_money(
    fake: FakePaymentStore, amount: str, user_id: str
) -> None:
    before = rejected("PaymentRejected", "no_such_charge")
    assert await on_payment_rejected(payment_rejected(amount, user_id), fake) == []
    await reserve(fake, "30.50")
    assert await on_payment_rejected(payment_rejected(amount, user_id), fake) == []
    assert rejected("PaymentRejected", "no_such_charge") == before + 2
    assert fake.balances[USER] == Decimal("69.50")
    assert fake.payments[ORDER].status is PaymentStatus.CHARGED


async def test_account_commands_and_queries_each_run_in_one_unit(fake: FakePaymentStore) -> None:
    unit = FakeUnitOfWork(fake)

    assert await application.set_balance(unit, "newcomer", Decimal("5.00")) == Decimal("5.00")
    assert await application.balance_of(unit, "newcomer") == Decimal("5.00")
    with pytest.raises(application.NoAccountError):
        await application.balance_of(unit, "nobody")
    assert await application.payments_of(unit, ORDER) == []
    await reserve(fake, "1.00", user_id="newcomer")
    [payment] = await application.payments_of(unit, ORDER)
    assert payment.status is PaymentStatus.CHARGED
    assert (unit.commits, unit.rollbacks) == (1, 4)
