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
    on_charge_payment,
    on_order_cancelled,
    on_order_placed,
    on_payment_rejected,
    on_refund_payment,
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
        "ChargePayment": on_charge_payment,
        "RefundPayment": on_refund_payment,
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


# --- orchestration: commands, with the same rules, answered with a reply -----------------


def charge_payment(amount: str = "30.50", user_id: str = USER) -> Envelope[P.ChargePayment]:
    command = samples.charge_payment(order_id=UUID(ORDER), user_id=user_id, amount=amount)
    return new_event(command, trace_headers=TRACE)


def refund_payment() -> Envelope[P.RefundPayment]:
    return new_event(samples.refund_payment(order_id=UUID(ORDER), user_id=USER))


def reply_of(event: Envelope[Any]) -> tuple[bool, str | None]:
    assert isinstance(event.data, P.CommandReply)
    return event.data.succeeded, event.data.reason


def orchestrated_order_placed(total: str = "30.50") -> Envelope[P.OrderPlaced]:
    placed = samples.order_placed(
        order_id=UUID(ORDER), user_id=USER, total=total, saga="orchestration"
    )
    return new_event(placed)


async def test_an_orchestrated_order_is_not_charged_or_refunded_by_the_choreography(
    fake: FakePaymentStore,
) -> None:
    assert await on_order_placed(orchestrated_order_placed(), fake) == []
    reserved = samples.stock_reserved(order_id=UUID(ORDER), total="30.50", saga="orchestration")
    assert await on_stock_reserved(new_event(reserved), fake) == []
    cancelled = samples.order_cancelled(order_id=UUID(ORDER), user_id=USER, saga="orchestration")
    assert await on_order_cancelled(new_event(cancelled), fake) == []
    assert fake.payments == {} and fake.balances[USER] == Decimal("100.00")


async def test_charge_payment_charges_once_and_replies(fake: FakePaymentStore) -> None:
    await on_order_placed(orchestrated_order_placed(), fake)
    cmd = charge_payment()
    processed, reply = await on_charge_payment(cmd, fake)
    assert processed.data == P.PaymentProcessed(order_id=UUID(ORDER), user_id=USER, amount="30.50")
    assert reply.subject == "payments.replies.ChargePaymentReply"
    assert reply.data == P.ChargePaymentReply(
        order_id=UUID(ORDER), command_id=UUID(cmd.event_id), succeeded=True, reason=None
    )
    assert reply.trace_headers == TRACE
    (again,) = await on_charge_payment(charge_payment(), fake)
    assert reply_of(again) == (True, None)
    assert fake.balances[USER] == Decimal("69.50")


async def test_charge_payment_without_funds_fails_with_the_reason(fake: FakePaymentStore) -> None:
    await on_order_placed(orchestrated_order_placed("500.00"), fake)
    failed, reply = await on_charge_payment(charge_payment("500.00"), fake)
    assert failed.name == "PaymentFailed"
    assert reply_of(reply) == (False, "insufficient_funds")


async def test_a_charge_payment_before_its_order_waits_and_is_answered_when_it_comes(
    fake: FakePaymentStore,
) -> None:
    cmd = charge_payment()
    assert await on_charge_payment(cmd, fake) == []
    assert fake.balances[USER] == Decimal("100.00")
    processed, reply = await on_order_placed(orchestrated_order_placed(), fake)
    assert processed.name == "PaymentProcessed" and reply_of(reply) == (True, None)
    assert isinstance(reply.data, P.ChargePaymentReply)
    assert reply.data.command_id == UUID(cmd.event_id) and reply.trace_headers == TRACE
    assert fake.balances[USER] == Decimal("69.50")


@pytest.mark.parametrize(
    ("amount", "user_id", "reason"),
    [
        pytest.param("5.00", USER, "total_mismatch", id="other-amount"),
        pytest.param("30.50", "someone-else", "user_mismatch", id="other-user"),
    ],
)
async def test_a_charge_payment_that_does_not_match_the_order_is_refused_with_a_failed_reply(
    fake: FakePaymentStore, amount: str, user_id: str, reason: str
) -> None:
    """The orchestrator is trusted no more than inventory: it charges only what OrderPlaced
    said, whoever asks."""
    fake.balances["someone-else"] = Decimal("100.00")
    before = rejected("ChargePayment", reason)
    await on_order_placed(orchestrated_order_placed("30.50"), fake)
    (reply,) = await on_charge_payment(charge_payment(amount, user_id), fake)
    assert reply_of(reply) == (False, reason)
    assert rejected("ChargePayment", reason) == before + 1
    assert fake.balances == {USER: Decimal("100.00"), "someone-else": Decimal("100.00")}
    assert ORDER not in fake.payments


async def test_refund_before_charge_leaves_a_tombstone_a_late_charge_respects(
    fake: FakePaymentStore,
) -> None:
    await on_order_placed(orchestrated_order_placed(), fake)
    (reply,) = await on_refund_payment(refund_payment(), fake)
    assert reply_of(reply) == (True, None)
    (late,) = await on_charge_payment(charge_payment(), fake)
    assert reply_of(late) == (False, "cancelled_before_charge")
    assert fake.balances[USER] == Decimal("100.00")


async def test_refund_payment_gives_a_charge_back_once(fake: FakePaymentStore) -> None:
    await on_order_placed(orchestrated_order_placed(), fake)
    await on_charge_payment(charge_payment(), fake)
    refunded, reply = await on_refund_payment(refund_payment(), fake)
    assert refunded.name == "PaymentRefunded" and reply_of(reply) == (True, None)
    (again,) = await on_refund_payment(refund_payment(), fake)
    assert reply_of(again) == (True, None)
    assert fake.balances[USER] == Decimal("100.00")
