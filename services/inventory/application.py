"""Inventory's commands, queries, saga reactions and saga commands over its store
(``inventory.ports``). A command or query runs in one unit of work; a reaction inside the
unit the consumer opened for its event. A choreographed order is reserved when OrderPlaced
arrives and released on OrderCancelled; an orchestrated one only on the orchestrator's
ReserveStock and ReleaseStock, answered with a reply. Both go through the same two rules
(``reserve``, ``release``). The handler map at the bottom says who reacts to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from inventory.domain import ReservationStatus, may_reserve, must_release, quantities_by_sku
from inventory.ports import InventoryStore, Reservation, StockLevel
from polysaga import metrics
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import Payload, SagaStyleName
from polysaga.events.saga_style import orchestrated
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


# --- the two rules, for both saga styles --------------------------------------------------


@dataclass(frozen=True)
class Decided:
    """What a reservation or release came to, and the events it caused (none when it had
    been decided before)."""

    succeeded: bool
    reason: str | None = None
    events: list[Envelope[Payload]] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """An order's stock as a reservation asks for it (OrderPlaced or ReserveStock)."""

    order_id: UUID
    user_id: str
    lines: Iterable[tuple[str, int]]
    total: str
    saga: SagaStyleName


def _lines(quantities: Mapping[str, int]) -> list[P.StockLine]:
    return [P.StockLine(sku=sku, quantity=q) for sku, q in quantities.items()]


async def reserve(
    request: Request, store: InventoryStore, trace_headers: Mapping[str, str]
) -> Decided:
    """Hold the order's stock, all or nothing, once; a second request finds the decision
    (or the tombstone of a release that came first) and changes nothing."""
    order_id = str(request.order_id)
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if not may_reserve(existing.status if existing else None):
        assert existing is not None
        reserved = existing.status is ReservationStatus.RESERVED
        return Decided(reserved, None if reserved else existing.reason or existing.status.lower())
    quantities = quantities_by_sku(request.lines)
    if await store.take(quantities):
        await store.record(order_id, ReservationStatus.RESERVED, quantities)
        reserved_event = P.StockReserved(
            order_id=request.order_id,
            user_id=request.user_id,
            items=_lines(quantities),
            total=request.total,
            saga=request.saga,
        )
        return Decided(True, events=[new_event(reserved_event, trace_headers=trace_headers)])
    missing = await store.missing_skus(list(quantities))
    reason = f"unknown_sku: {', '.join(missing)}" if missing else "insufficient_stock"
    await store.record(order_id, ReservationStatus.FAILED, quantities, reason)
    failed = P.StockReservationFailed(order_id=request.order_id, reason=reason)
    return Decided(False, reason, [new_event(failed, trace_headers=trace_headers)])


async def release(
    order_uuid: UUID, store: InventoryStore, trace_headers: Mapping[str, str]
) -> Decided:
    """Give the order's stock back, once; before any reservation, leave a tombstone so a
    late one reserves nothing. Always succeeds."""
    order_id = str(order_uuid)
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if existing is None:
        await store.record(order_id, ReservationStatus.CANCELLED, {}, "cancelled_before_reserve")
        return Decided(True)
    if not must_release(existing.status):
        return Decided(True)
    await store.give_back(existing.items)
    await store.record(order_id, ReservationStatus.RELEASED, existing.items)
    metrics.COMPENSATIONS.labels(action="release").inc()
    released = P.StockReleased(order_id=order_uuid, items=_lines(existing.items))
    return Decided(True, events=[new_event(released, trace_headers=trace_headers)])


# --- choreography -------------------------------------------------------------------------


async def on_order_placed(
    event: Envelope[P.OrderPlaced], store: InventoryStore
) -> list[Envelope[Payload]]:
    placed = event.data
    if orchestrated(placed):
        return []  # the orchestrator will send ReserveStock
    request = Request(
        placed.order_id,
        placed.user_id,
        ((line.sku, line.quantity) for line in placed.items),
        placed.total,
        placed.saga,
    )
    return (await reserve(request, store, event.trace_headers)).events


async def on_order_cancelled(
    event: Envelope[P.OrderCancelled], store: InventoryStore
) -> list[Envelope[Payload]]:
    if orchestrated(event.data):
        return []  # the orchestrator has sent ReleaseStock already
    return (await release(event.data.order_id, store, event.trace_headers)).events


# --- orchestration ------------------------------------------------------------------------


async def on_reserve_stock(
    command: Envelope[P.ReserveStock], store: InventoryStore
) -> list[Envelope[Payload]]:
    c = command.data
    request = Request(
        c.order_id,
        c.user_id,
        ((line.sku, line.quantity) for line in c.items),
        c.total,
        "orchestration",
    )
    decided = await reserve(request, store, command.trace_headers)
    reply = P.ReserveStockReply(
        order_id=c.order_id,
        command_id=UUID(command.event_id),
        succeeded=decided.succeeded,
        reason=decided.reason,
    )
    return [*decided.events, new_event(reply, trace_headers=command.trace_headers)]


async def on_release_stock(
    command: Envelope[P.ReleaseStock], store: InventoryStore
) -> list[Envelope[Payload]]:
    decided = await release(command.data.order_id, store, command.trace_headers)
    reply = P.ReleaseStockReply(
        order_id=command.data.order_id,
        command_id=UUID(command.event_id),
        succeeded=decided.succeeded,
        reason=decided.reason,
    )
    return [*decided.events, new_event(reply, trace_headers=command.trace_headers)]


Reaction = Callable[[Envelope[Any], InventoryStore], Awaitable[list[Envelope[Payload]]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "OrderCancelled": on_order_cancelled,
    "ReserveStock": on_reserve_stock,
    "ReleaseStock": on_release_stock,
}
