"""Payment's commands, queries and saga reactions over its store (``payment.ports``). A
command or query runs in one unit of work; a reaction inside the unit the consumer opened
for its event. The handler map at the bottom says who reacts to what.

Money moves only as the order service said when the order was placed: OrderPlaced tells
payment the order's user and total, a StockReserved that matches them is charged that total
(one that arrives first waits for it), and one that does not is refused and counted. A
charge the order service later rejects (PaymentRejected) is refunded."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from payment.domain import (
    PaymentStatus,
    PlacedOrder,
    ReservationClaim,
    claim_mismatch,
    is_the_charge,
    may_charge,
    must_refund,
)
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

log = logging.getLogger(__name__)


async def on_order_placed(
    event: Envelope[P.OrderPlaced], store: PaymentStore
) -> list[Envelope[Payload]]:
    placed = event.data
    order = PlacedOrder(str(placed.order_id), placed.user_id, parse_money(placed.total))
    await store.lock_order(order.order_id)
    await store.learn_order(order)
    emitted: list[Envelope[Payload]] = []
    for claim in await store.take_awaited(order.order_id):
        emitted += await _charge(store, order, claim)
    return emitted


async def on_stock_reserved(
    event: Envelope[P.StockReserved], store: PaymentStore
) -> list[Envelope[Payload]]:
    reserved = event.data
    order_id = str(reserved.order_id)
    claim = ReservationClaim(
        event.event_id, reserved.user_id, parse_money(reserved.total), dict(event.trace_headers)
    )
    await store.lock_order(order_id)
    order = await store.placed_order(order_id)
    if order is None:
        await store.await_order(order_id, claim)
        return []
    return await _charge(store, order, claim)


async def _charge(
    store: PaymentStore, order: PlacedOrder, claim: ReservationClaim
) -> list[Envelope[Payload]]:
    mismatch = claim_mismatch(order, claim)
    if mismatch is not None:
        metrics.EVENTS_REJECTED.labels(event_type="StockReserved", reason=mismatch).inc()
        log.warning(
            "refused StockReserved %s for order %s (%s): it names user %s and total %s,"
            " the order was placed by %s for %s",
            claim.event_id,
            order.order_id,
            mismatch,
            claim.user_id,
            format_money(claim.total),
            order.user_id,
            format_money(order.total),
        )
        return []
    existing = await store.payment(order.order_id)
    if not may_charge(existing.status if existing else None):
        return []  # already charged or failed, or the order was cancelled first
    order_uuid, user_id, amount = UUID(order.order_id), order.user_id, order.total
    if await store.debit(user_id, amount):
        await store.record(order.order_id, user_id, amount, PaymentStatus.CHARGED)
        processed = P.PaymentProcessed(
            order_id=order_uuid, user_id=user_id, amount=format_money(amount)
        )
        return [new_event(processed, trace_headers=claim.trace_headers)]
    reason = "insufficient_funds" if await store.has_account(user_id) else "no_account"
    await store.record(order.order_id, user_id, amount, PaymentStatus.FAILED, reason)
    failed = P.PaymentFailed(order_id=order_uuid, user_id=user_id, reason=reason)
    return [new_event(failed, trace_headers=claim.trace_headers)]


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
    metrics.COMPENSATIONS.labels(action="refund").inc()
    return [await _refund(store, existing.order_id, existing.user_id, existing.amount, event)]


async def on_payment_rejected(
    event: Envelope[P.PaymentRejected], store: PaymentStore
) -> list[Envelope[Payload]]:
    """The order service could not match a charge: give it back, if it is the charge payment
    holds (a rejection of some other claim moves no money either)."""
    rejected = event.data
    order_id, amount = str(rejected.order_id), parse_money(rejected.amount)
    await store.lock_order(order_id)
    existing = await store.payment(order_id)
    if existing is None or not is_the_charge(
        existing.status, existing.user_id, existing.amount, rejected.user_id, amount
    ):
        metrics.EVENTS_REJECTED.labels(event_type="PaymentRejected", reason="no_such_charge").inc()
        log.warning(
            "order %s: the order service rejected a charge of %s to %s (%s) that payment does"
            " not hold; nothing to give back",
            order_id,
            rejected.amount,
            rejected.user_id,
            rejected.reason,
        )
        return []
    metrics.COMPENSATIONS.labels(action="refund_rejected").inc()
    log.warning(
        "order %s: the order service rejected the charge of %s to %s (%s); refunded",
        order_id,
        rejected.amount,
        rejected.user_id,
        rejected.reason,
    )
    return [await _refund(store, order_id, existing.user_id, existing.amount, event)]


async def _refund(
    store: PaymentStore, order_id: str, user_id: str, amount: Decimal, cause: Envelope[Any]
) -> Envelope[Payload]:
    await store.credit(user_id, amount)
    await store.record(order_id, user_id, amount, PaymentStatus.REFUNDED)
    refunded = P.PaymentRefunded(
        order_id=UUID(order_id), user_id=user_id, amount=format_money(amount)
    )
    return new_event(refunded, trace_headers=cause.trace_headers)


Reaction = Callable[[Envelope[Any], PaymentStore], Awaitable[list[Envelope[Payload]]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "StockReserved": on_stock_reserved,
    "OrderCancelled": on_order_cancelled,
    "PaymentRejected": on_payment_rejected,
}
