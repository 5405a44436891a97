"""Inventory's saga reactions; the handler map at the bottom says who reacts to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from inventory.adapters import InventoryStore
from inventory.domain import ReservationStatus, may_reserve, must_release, quantities_by_sku
from polysaga import metrics
from polysaga.events.envelope import Envelope, new_event


async def on_order_placed(event: Envelope, store: InventoryStore) -> list[Envelope]:
    order_id = event.data["order_id"]
    await store.lock_order(order_id)
    existing = await store.reservation(order_id)
    if not may_reserve(existing.status if existing else None):
        return []  # cancelled before we got here, or already decided
    quantities = quantities_by_sku(event.data["items"])
    if await store.take(quantities):
        await store.record(order_id, ReservationStatus.RESERVED, quantities)
        return [
            new_event(
                "StockReserved",
                order_id,
                {
                    "order_id": order_id,
                    "user_id": event.data["user_id"],
                    "items": [{"sku": s, "quantity": q} for s, q in quantities.items()],
                    "total": event.data["total"],
                },
                trace_headers=event.trace_headers,
            )
        ]
    missing = await store.missing_skus(list(quantities))
    reason = f"unknown_sku: {', '.join(missing)}" if missing else "insufficient_stock"
    await store.record(order_id, ReservationStatus.FAILED, quantities, reason)
    return [
        new_event(
            "StockReservationFailed",
            order_id,
            {"order_id": order_id, "reason": reason},
            trace_headers=event.trace_headers,
        )
    ]


async def on_order_cancelled(event: Envelope, store: InventoryStore) -> list[Envelope]:
    order_id = event.data["order_id"]
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
    return [
        new_event(
            "StockReleased",
            order_id,
            {
                "order_id": order_id,
                "items": [{"sku": s, "quantity": q} for s, q in existing.items.items()],
            },
            trace_headers=event.trace_headers,
        )
    ]


Reaction = Callable[[Envelope, InventoryStore], Awaitable[list[Envelope]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "OrderCancelled": on_order_cancelled,
}
