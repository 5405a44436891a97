"""Inventory's saga reactions and commands; the handler map at the bottom says who reacts to
what. A choreographed order is reserved when OrderPlaced arrives and released on
OrderCancelled; an orchestrated one only on the orchestrator's ReserveStock and ReleaseStock,
answered with a reply. Both go through the same two rules below."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory.adapters import InventoryStore
from inventory.domain import ReservationStatus, may_reserve, must_release, quantities_by_sku
from polysaga import metrics
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.saga_style import FIELD, SagaStyle, orchestrated, style_of


@dataclass(frozen=True)
class Decided:
    """What a reservation or release came to, and the events it caused (none when it had
    been decided before)."""

    succeeded: bool
    reason: str | None = None
    events: list[Envelope] = field(default_factory=list)


async def reserve(event: Envelope, store: InventoryStore, style: SagaStyle) -> Decided:
    """Hold the order's stock, all or nothing, once; a second request finds the decision
    (or the tombstone of a release that came first) and changes nothing."""
    data = event.data
    order_id = data["order_id"]
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if not may_reserve(existing.status if existing else None):
        assert existing is not None
        reserved = existing.status is ReservationStatus.RESERVED
        return Decided(reserved, None if reserved else existing.reason or existing.status.lower())
    quantities = quantities_by_sku(data["items"])
    if await store.take(quantities):
        await store.record(order_id, ReservationStatus.RESERVED, quantities)
        body = {
            "order_id": order_id,
            "user_id": data["user_id"],
            "items": _lines(quantities),
            "total": data["total"],
            FIELD: style.value,
        }
        return Decided(True, events=[_caused(event, "StockReserved", order_id, body)])
    missing = await store.missing_skus(list(quantities))
    reason = f"unknown_sku: {', '.join(missing)}" if missing else "insufficient_stock"
    await store.record(order_id, ReservationStatus.FAILED, quantities, reason)
    failed = _caused(
        event, "StockReservationFailed", order_id, {"order_id": order_id, "reason": reason}
    )
    return Decided(False, reason, [failed])


async def release(event: Envelope, store: InventoryStore) -> Decided:
    """Give the order's stock back, once; before any reservation, leave a tombstone so a
    late one reserves nothing. Always succeeds."""
    order_id = event.data["order_id"]
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
    body = {"order_id": order_id, "items": _lines(existing.items)}
    return Decided(True, events=[_caused(event, "StockReleased", order_id, body)])


# --- choreography -------------------------------------------------------------------------


async def on_order_placed(event: Envelope, store: InventoryStore) -> list[Envelope]:
    if orchestrated(event.data):
        return []  # the orchestrator will send ReserveStock
    return (await reserve(event, store, style_of(event.data))).events


async def on_order_cancelled(event: Envelope, store: InventoryStore) -> list[Envelope]:
    if orchestrated(event.data):
        return []  # the orchestrator has sent ReleaseStock already
    return (await release(event, store)).events


# --- orchestration ------------------------------------------------------------------------


async def on_reserve_stock(command: Envelope, store: InventoryStore) -> list[Envelope]:
    decided = await reserve(command, store, SagaStyle.ORCHESTRATION)
    return [*decided.events, reply(command, decided)]


async def on_release_stock(command: Envelope, store: InventoryStore) -> list[Envelope]:
    decided = await release(command, store)
    return [*decided.events, reply(command, decided)]


def reply(command: Envelope, decided: Decided) -> Envelope:
    order_id = command.data["order_id"]
    body = {
        "order_id": order_id,
        "command_id": command.event_id,
        "succeeded": decided.succeeded,
        "reason": decided.reason,
    }
    return _caused(command, f"{command.name}Reply", order_id, body)


def _lines(quantities: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"sku": s, "quantity": q} for s, q in quantities.items()]


def _caused(cause: Envelope, name: str, order_id: str, data: dict[str, Any]) -> Envelope:
    return new_event(name, order_id, data, trace_headers=cause.trace_headers)


Reaction = Callable[[Envelope, InventoryStore], Awaitable[list[Envelope]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "OrderCancelled": on_order_cancelled,
    "ReserveStock": on_reserve_stock,
    "ReleaseStock": on_release_stock,
}
