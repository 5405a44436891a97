"""Order commands, queries and saga reactions. A command or query runs in one unit of work
over the order store (``order.ports``); a reaction runs inside the unit the consumer opened
for its event. The handler map at the bottom shows on one screen what the order service
does when each event arrives."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from order.domain import IllegalTransitionError, Order, OrderEvent, OrderStatus, payment_mismatch
from order.ports import OrderListing, OrderStore
from polysaga import metrics, tracing
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.saga_style import SagaStyle
from polysaga.money import parse_money
from polysaga.unit_of_work import UnitOfWork

OrderUnit = UnitOfWork[OrderStore]

log = logging.getLogger(__name__)


class IdempotencyKeyReusedError(Exception):
    """The same Idempotency-Key came with a different request body."""


class OrderNotFoundError(LookupError):
    """No such order (at that time)."""

    def __init__(self, order_id: str, as_of: datetime | None = None) -> None:
        when = f" as of {as_of.isoformat()}" if as_of is not None else ""
        super().__init__(f"no order {order_id}{when}")


class PriceNotFoundError(LookupError):
    """The replica has no price for this SKU."""


class OrderStateConflictError(Exception):
    """The order's status does not allow this (shipping an order that is not CONFIRMED)."""


@dataclass(frozen=True)
class PlaceOrder:
    user_id: str
    items: tuple[tuple[str, int], ...]
    idempotency_key: str | None = None
    saga: SagaStyle = SagaStyle.CHOREOGRAPHY

    def fingerprint(self) -> str:
        body: list[object] = [self.user_id, self.items]
        if self.saga is not SagaStyle.CHOREOGRAPHY:  # keys taken before styles keep theirs
            body.append(self.saga.value)
        return hashlib.sha256(msgspec.json.encode(body)).hexdigest()


@dataclass(frozen=True)
class Placed:
    order_id: str
    version: int


# --- commands ------------------------------------------------------------------------------


async def place_order(
    uow: OrderUnit, command: PlaceOrder, *, now: datetime, deadline_s: float
) -> Placed:
    order_id = str(uuid.uuid4())
    async with uow:
        store = uow.store
        if command.idempotency_key is not None:
            earlier = await store.claim_key(
                command.idempotency_key, command.fingerprint(), order_id
            )
            if earlier is not None:
                if earlier.request_hash != command.fingerprint():
                    raise IdempotencyKeyReusedError(command.idempotency_key)
                return Placed(earlier.order_id, earlier.version)
        with tracing.order_baggage(order_id):  # the saga's trace carries the order id from here
            prices = await store.prices([sku for sku, _ in command.items])
            event = Order.place(
                order_id,
                command.user_id,
                command.items,
                prices,
                now,
                now + timedelta(seconds=deadline_s),
                command.saga,
            )
            order = await store.append(None, event)
        await uow.commit()
    metrics.SAGAS_STARTED.inc()
    return Placed(order.order_id, order.version)


async def set_price(uow: OrderUnit, sku: str, price: Decimal) -> Decimal:
    """A manual override of the replica; the catalog's next change replaces it."""
    async with uow:
        await uow.store.set_price(sku, price)
        await uow.commit()
    return price


async def ship_order(
    uow: OrderUnit, order_id: str, tracking_number: str, *, now: datetime
) -> Order:
    """Record OrderShipped, only for a CONFIRMED order; otherwise nothing is written."""
    return await _advance(uow, order_id, lambda order: order.ship(tracking_number, now))


async def deliver_order(uow: OrderUnit, order_id: str, *, now: datetime) -> Order:
    """Record OrderDelivered, only for a SHIPPED order; otherwise nothing is written."""
    return await _advance(uow, order_id, lambda order: order.deliver(now))


async def _advance(uow: OrderUnit, order_id: str, step: Callable[[Order], OrderEvent]) -> Order:
    async with uow:
        order = await _load(uow.store, order_id)
        try:
            event = step(order)
        except IllegalTransitionError as exc:
            raise OrderStateConflictError(str(exc)) from exc
        moved = await uow.store.append(order, event)
        await uow.commit()
    return moved


async def cancel_overdue(uow: OrderUnit, now: datetime, limit: int = 100) -> int:
    """Cancel orders still pending after their deadline; returns how many."""
    cancelled = 0
    async with uow:
        for overdue in await uow.store.overdue(now, limit):
            # No message or request starts this cancellation, so its span continues the trace
            # of the request that placed the order (a child of it, context stored with the
            # order, rather than a new trace linked to it): the deadline path stays in the
            # saga's trace.
            with tracing.continued(
                overdue.trace_context, "order deadline_exceeded", order_id=overdue.order_id
            ):
                if await cancel_if_pending(uow.store, overdue.order_id, "deadline_exceeded", now):
                    cancelled += 1
        await uow.commit()
    return cancelled


# --- queries -------------------------------------------------------------------------------


async def get_order(uow: OrderUnit, order_id: str, as_of: datetime | None = None) -> Order:
    async with uow:
        order = await uow.store.load(order_id, as_of=as_of)
    if order is None:
        raise OrderNotFoundError(order_id, as_of)
    return order


async def order_events(uow: OrderUnit, order_id: str) -> list[dict[str, object]]:
    async with uow:
        events = await uow.store.events(order_id)
    if not events:
        raise OrderNotFoundError(order_id)
    return events


async def list_orders(
    uow: OrderUnit, status: str | None, after: str | None, limit: int
) -> list[OrderListing]:
    async with uow:
        return await uow.store.list_orders(status, after, limit)


async def count_by_status(uow: OrderUnit) -> dict[str, int]:
    async with uow:
        counts = await uow.store.count_by_status()
    return {status.value: counts.get(status.value, 0) for status in OrderStatus}


async def saga_counts(uow: OrderUnit, now: datetime) -> tuple[int, int]:
    """(sagas in flight, of which stuck past their deadline)."""
    async with uow:
        return await uow.store.pending_counts(now)


async def get_price(uow: OrderUnit, sku: str) -> Decimal:
    async with uow:
        prices = await uow.store.prices([sku])
    if sku not in prices:
        raise PriceNotFoundError(sku)
    return prices[sku]


# --- saga reactions ------------------------------------------------------------------------


async def _load(store: OrderStore, order_id: str) -> Order:
    order = await store.load(order_id)
    if order is None:
        raise OrderNotFoundError(order_id)
    return order


def _record_end(order: Order, now: datetime) -> None:
    outcome = order.status.value.lower()
    metrics.SAGAS.labels(outcome=outcome).inc()
    metrics.SAGA_DURATION.labels(outcome=outcome).observe((now - order.placed_at).total_seconds())


async def cancel_if_pending(
    store: OrderStore,
    order_id: str,
    reason: str,
    now: datetime,
    style: SagaStyle = SagaStyle.CHOREOGRAPHY,
) -> bool:
    """Cancel a pending order of the given saga style; an order that already ended is left
    as it is (a late event's effects are compensated by inventory and payment reacting to
    OrderCancelled, or by the orchestrator)."""
    order = await _load(store, order_id)
    if order.status is not OrderStatus.PENDING or order.saga is not style:
        return False
    _record_end(await store.append(order, order.cancel(reason, now)), now)
    return True


async def confirm_if_pending(
    store: OrderStore, order_id: str, now: datetime, style: SagaStyle = SagaStyle.CHOREOGRAPHY
) -> bool:
    order = await _load(store, order_id)
    if order.status is not OrderStatus.PENDING or order.saga is not style:
        return False
    _record_end(await store.append(order, order.confirm(now)), now)
    return True


# Choreography: the order ends on the participants' events. An orchestrated order ignores
# them and ends when the orchestrator says so (a payment for it is still checked, and
# recorded).


async def on_payment_processed(
    event: Envelope[P.PaymentProcessed], store: OrderStore, now: datetime
) -> None:
    """Record the payment (PaymentReceived) on the order it is for, if that order is still
    pending, and confirm a choreographed one in the same transaction. A payment that matches
    no order of ours (none such, another user, another amount: a forged or buggy event) is
    rejected, so payment gives the money back, and counted."""
    paid = event.data
    order = await store.load(str(paid.order_id))
    mismatch = payment_mismatch(order, paid.user_id, parse_money(paid.amount))
    if mismatch is not None:
        metrics.EVENTS_REJECTED.labels(event_type="PaymentProcessed", reason=mismatch).inc()
        log.warning(
            "rejected PaymentProcessed %s for order %s (%s): %s to %s",
            event.event_id,
            paid.order_id,
            mismatch,
            paid.amount,
            paid.user_id,
        )
        rejected = P.PaymentRejected(
            order_id=paid.order_id, user_id=paid.user_id, amount=paid.amount, reason=mismatch
        )
        await store.publish([new_event(rejected, trace_headers=event.trace_headers)])
        return
    assert order is not None
    if order.status is not OrderStatus.PENDING:
        return  # too late: the order ended; payment refunds a charge for a cancelled order
    if order.paid_at is None:  # a redelivery finds it recorded
        order = await store.append(order, order.receive_payment(parse_money(paid.amount), now))
    if order.saga is SagaStyle.CHOREOGRAPHY:
        _record_end(await store.append(order, order.confirm(now)), now)


async def on_payment_failed(
    event: Envelope[P.PaymentFailed], store: OrderStore, now: datetime
) -> None:
    reason = f"payment_failed: {event.data.reason}"
    await cancel_if_pending(store, str(event.data.order_id), reason, now)


async def on_stock_reservation_failed(
    event: Envelope[P.StockReservationFailed], store: OrderStore, now: datetime
) -> None:
    reason = f"stock_unavailable: {event.data.reason}"
    await cancel_if_pending(store, str(event.data.order_id), reason, now)


# --- orchestration: the orchestrator's outcome ------------------------------------------------


async def on_saga_completed(
    event: Envelope[P.SagaCompleted], store: OrderStore, now: datetime
) -> None:
    await confirm_if_pending(store, str(event.data.order_id), now, SagaStyle.ORCHESTRATION)


async def on_saga_compensated(
    event: Envelope[P.SagaCompensated], store: OrderStore, now: datetime
) -> None:
    await cancel_if_pending(
        store, str(event.data.order_id), event.data.reason, now, SagaStyle.ORCHESTRATION
    )


# --- the price replica -----------------------------------------------------------------------


async def on_product_priced(
    event: Envelope[P.ProductCreated | P.ProductPriceChanged], store: OrderStore, now: datetime
) -> None:
    """ProductCreated and ProductPriceChanged both carry the price at a catalog version;
    the newest version wins, whatever order the events arrive in."""
    data = event.data
    await store.learn_price(data.sku, parse_money(data.price), data.version)
    lag = (now - event.time).total_seconds()
    metrics.CONSISTENCY_LAG.labels(read_model="order-prices").observe(max(lag, 0.0))


SagaReaction = Callable[[Envelope[Any], OrderStore, datetime], Awaitable[None]]

EVENT_HANDLERS: dict[str, SagaReaction] = {
    "PaymentProcessed": on_payment_processed,
    "PaymentFailed": on_payment_failed,
    "StockReservationFailed": on_stock_reservation_failed,
    "SagaCompleted": on_saga_completed,
    "SagaCompensated": on_saga_compensated,
    "ProductCreated": on_product_priced,
    "ProductPriceChanged": on_product_priced,
}
