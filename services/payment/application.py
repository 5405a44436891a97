"""Payment's commands, queries and saga reactions over its store (``payment.ports``). A
command or query runs in one unit of work; a reaction inside the unit the consumer opened
for its event. The handler map at the bottom says who reacts to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from payment.domain import PaymentStatus, may_charge, must_refund
from payment.ports import Payment, PaymentStore
from polysaga import metrics
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import Payload
from polysaga.money import format_money, parse_money
from polysaga.unit_of_work import UnitOfWork

PaymentUnit = UnitOfWork[PaymentStore]


class NoAccountError(LookupError):
    """No account for this user."""


# --- commands and queries ----------------------------------------------------------------


async def set_balance(uow: PaymentUnit, user_id: str, balance: Decimal) -> Decimal:
    """Open the account or set its balance."""
    async with uow:
        stored = await uow.store.set_balance(user_id, balance)
        await uow.commit()
    return stored


async def balance_of(uow: PaymentUnit, user_id: str) -> Decimal:
    async with uow:
        balance = await uow.store.balance(user_id)
    if balance is None:
        raise NoAccountError(user_id)
    return balance


async def payments_of(uow: PaymentUnit, order_id: str) -> list[Payment]:
    """The order's payment record, if any (there is at most one)."""
    async with uow:
        payment = await uow.store.payment(order_id)
    return [] if payment is None else [payment]


# --- saga reactions ----------------------------------------------------------------------


async def on_stock_reserved(
    event: Envelope[P.StockReserved], store: PaymentStore
) -> list[Envelope[Payload]]:
    reserved = event.data
    order_id, user_id = str(reserved.order_id), reserved.user_id
    amount = parse_money(reserved.total)
    await store.lock_order(order_id)
    existing = await store.payment(order_id)
    if not may_charge(existing.status if existing else None):
        return []  # already charged or failed, or the order was cancelled first
    if await store.debit(user_id, amount):
        await store.record(order_id, user_id, amount, PaymentStatus.CHARGED)
        processed = P.PaymentProcessed(
            order_id=reserved.order_id, user_id=user_id, amount=format_money(amount)
        )
        return [new_event(processed, trace_headers=event.trace_headers)]
    reason = "insufficient_funds" if await store.has_account(user_id) else "no_account"
    await store.record(order_id, user_id, amount, PaymentStatus.FAILED, reason)
    failed = P.PaymentFailed(order_id=reserved.order_id, user_id=user_id, reason=reason)
    return [new_event(failed, trace_headers=event.trace_headers)]


async def on_order_cancelled(
    event: Envelope[P.OrderCancelled], store: PaymentStore
) -> list[Envelope[Payload]]:
    order_id, user_id = str(event.data.order_id), event.data.user_id
    await store.lock_order(order_id)
    existing = await store.payment(order_id)
    if existing is None:
        # The cancel came first: a tombstone so a late StockReserved charges nothing.
        await store.record(
            order_id, user_id, Decimal("0.00"), PaymentStatus.CANCELLED, "cancelled_before_charge"
        )
        return []
    if not must_refund(existing.status):
        return []
    await store.credit(existing.user_id, existing.amount)
    await store.record(order_id, existing.user_id, existing.amount, PaymentStatus.REFUNDED)
    metrics.COMPENSATIONS.labels(action="refund").inc()
    refunded = P.PaymentRefunded(
        order_id=event.data.order_id,
        user_id=existing.user_id,
        amount=format_money(existing.amount),
    )
    return [new_event(refunded, trace_headers=event.trace_headers)]


Reaction = Callable[[Envelope[Any], PaymentStore], Awaitable[list[Envelope[Payload]]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "StockReserved": on_stock_reserved,
    "OrderCancelled": on_order_cancelled,
}
