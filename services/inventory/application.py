"""Inventory's commands, queries and saga reactions over its store (``inventory.ports``). A
command or query runs in one unit of work; a reaction inside the unit the consumer opened
for its event. The handler map at the bottom says who reacts to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from inventory.domain import ReservationStatus, may_reserve, must_release, quantities_by_sku
from inventory.ports import InventoryStore, Reservation, StockLevel
from polysaga import metrics
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import Payload
from polysaga.unit_of_work import UnitOfWork

InventoryUnit = UnitOfWork[InventoryStore]


class UnknownSkuError(LookupError):
    """No stock record for this SKU."""


class NoReservationError(LookupError):
    """Inventory has seen no event for this order."""


# --- commands and queries ----------------------------------------------------------------


async def set_stock(uow: InventoryUnit, sku: str, available: int) -> StockLevel:
    async with uow:
        level = await uow.store.set_available(sku, available)
        await uow.commit()
    return level


async def stock_of(uow: InventoryUnit, sku: str) -> StockLevel:
    async with uow:
        level = await uow.store.level(sku)
    if level is None:
        raise UnknownSkuError(sku)
    return level


async def reservation_of(uow: InventoryUnit, order_id: str) -> Reservation:
    async with uow:
        reservation = await uow.store.reservation(order_id)
    if reservation is None:
        raise NoReservationError(order_id)
    return reservation


# --- saga reactions ----------------------------------------------------------------------


def _lines(quantities: dict[str, int]) -> list[P.StockLine]:
    return [P.StockLine(sku=sku, quantity=q) for sku, q in quantities.items()]


async def on_order_placed(
    event: Envelope[P.OrderPlaced], store: InventoryStore
) -> list[Envelope[Payload]]:
    placed = event.data
    order_id = str(placed.order_id)
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if not may_reserve(existing.status if existing else None):
        return []  # cancelled before we got here, or already decided
    quantities = quantities_by_sku((line.sku, line.quantity) for line in placed.items)
    if await store.take(quantities):
        await store.record(order_id, ReservationStatus.RESERVED, quantities)
        reserved = P.StockReserved(
            order_id=placed.order_id,
            user_id=placed.user_id,
            items=_lines(quantities),
            total=placed.total,
        )
        return [new_event(reserved, trace_headers=event.trace_headers)]
    missing = await store.missing_skus(list(quantities))
    reason = f"unknown_sku: {', '.join(missing)}" if missing else "insufficient_stock"
    await store.record(order_id, ReservationStatus.FAILED, quantities, reason)
    failed = P.StockReservationFailed(order_id=placed.order_id, reason=reason)
    return [new_event(failed, trace_headers=event.trace_headers)]


async def on_order_cancelled(
    event: Envelope[P.OrderCancelled], store: InventoryStore
) -> list[Envelope[Payload]]:
    order_id = str(event.data.order_id)
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if existing is None:
        # Cancelled before OrderPlaced reached us: leave a tombstone so nothing is reserved.
        await store.record(order_id, ReservationStatus.CANCELLED, {}, "cancelled_before_reserve")
        return []
    if not must_release(existing.status):
        return []
    await store.give_back(existing.items)
    await store.record(order_id, ReservationStatus.RELEASED, existing.items)
    metrics.COMPENSATIONS.labels(action="release").inc()
    released = P.StockReleased(order_id=event.data.order_id, items=_lines(existing.items))
    return [new_event(released, trace_headers=event.trace_headers)]


Reaction = Callable[[Envelope[Any], InventoryStore], Awaitable[list[Envelope[Payload]]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "OrderCancelled": on_order_cancelled,
}
