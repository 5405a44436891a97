"""Inventory's saga reactions against an in-memory InventoryStore."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import msgspec
import pytest

import event_samples as samples
from inventory.adapters import InventoryStore, Reservation
from inventory.application import EVENT_HANDLERS, on_order_cancelled, on_order_placed
from inventory.domain import ReservationStatus, quantities_by_sku
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event

ORDER = "5f0c3a8e-2d44-4c7e-8f0b-9a1d2e3f4a5b"
OTHER = "6a1d4b9f-3e55-4d8f-9a1c-0b2e3f4a5b6c"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


class FakeInventoryStore:
    """InventoryStore in memory, with the same all-or-nothing ``take`` and the same
    ``record`` upsert (a later record keeps the first record's items)."""

    def __init__(self, stock: dict[str, int]) -> None:
        self.available = dict(stock)
        self.reserved = dict.fromkeys(stock, 0)
        self.reservations: dict[str, Reservation] = {}
        self.calls: list[str] = []

    async def lock_order(self, order_id: str) -> None:
        self.calls.append(f"lock {order_id}")

    async def reservation(self, order_id: str) -> Reservation | None:
        self.calls.append(f"read {order_id}")
        return self.reservations.get(order_id)

    async def take(self, quantities: dict[str, int]) -> bool:
        if any(self.available.get(sku, -1) < q for sku, q in quantities.items()):
            return False
        for sku, q in quantities.items():
            self.available[sku] -= q
            self.reserved[sku] += q
        return True

    async def give_back(self, quantities: dict[str, int]) -> None:
        for sku, q in quantities.items():
            if sku in self.available:
                self.available[sku] += q
                self.reserved[sku] -= q

    async def record(
        self,
        order_id: str,
        status: ReservationStatus,
        quantities: dict[str, int],
        reason: str | None = None,
    ) -> None:
        earlier = self.reservations.get(order_id)
        if earlier is None:
            self.reservations[order_id] = Reservation(order_id, status, dict(quantities), reason)
        else:
            self.reservations[order_id] = Reservation(
                order_id, status, earlier.items, reason or earlier.reason
            )

    async def missing_skus(self, skus: list[str]) -> list[str]:
        return [sku for sku in skus if sku not in self.available]


def as_store(fake: FakeInventoryStore) -> InventoryStore:
    return cast(InventoryStore, fake)


def order_placed(*items: tuple[str, int], order_id: str = ORDER) -> Envelope[P.OrderPlaced]:
    payload = samples.order_placed(
        order_id=UUID(order_id),
        items=samples.order_lines(*((s, q, "1.00") for s, q in items)),
        total="9.99",
    )
    return new_event(payload, trace_headers=TRACE)


def order_cancelled(order_id: str = ORDER) -> Envelope[P.OrderCancelled]:
    return new_event(samples.order_cancelled(order_id=UUID(order_id), reason="x"))


def body(event: Envelope[Any]) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event.data)
    return data


@pytest.fixture
def fake() -> FakeInventoryStore:
    return FakeInventoryStore({"APPLE": 5, "PEAR": 3})


def test_handler_map() -> None:
    assert {"OrderPlaced": on_order_placed, "OrderCancelled": on_order_cancelled} == EVENT_HANDLERS


def test_quantities_are_merged_per_sku_and_sorted() -> None:
    merged = quantities_by_sku([("PEAR", 1), ("APPLE", 2), ("PEAR", 4)])

    assert list(merged.items()) == [("APPLE", 2), ("PEAR", 5)]


async def test_order_placed_reserves_every_line(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(
        order_placed(("PEAR", 1), ("APPLE", 2), ("APPLE", 1)), as_store(fake)
    )

    assert event.name == "StockReserved"
    assert event.aggregate_id == ORDER
    assert body(event) == {
        "order_id": ORDER,
        "user_id": "user-1",
        "items": [{"sku": "APPLE", "quantity": 3}, {"sku": "PEAR", "quantity": 1}],
        "total": "9.99",
    }
    assert event.trace_headers == TRACE
    assert fake.available == {"APPLE": 2, "PEAR": 2}
    assert fake.reserved == {"APPLE": 3, "PEAR": 1}
    assert fake.reservations[ORDER].status is ReservationStatus.RESERVED


async def test_the_order_is_locked_before_its_reservation_is_read(
    fake: FakeInventoryStore,
) -> None:
    await on_order_placed(order_placed(("APPLE", 1)), as_store(fake))

    assert fake.calls[:2] == [f"lock {ORDER}", f"read {ORDER}"]


async def test_one_short_sku_reserves_nothing(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(order_placed(("APPLE", 5), ("PEAR", 4)), as_store(fake))

    assert event.name == "StockReservationFailed"
    assert body(event) == {"order_id": ORDER, "reason": "insufficient_stock"}
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reserved == {"APPLE": 0, "PEAR": 0}
    assert fake.reservations[ORDER].status is ReservationStatus.FAILED


async def test_unknown_sku_fails_naming_it(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(order_placed(("APPLE", 1), ("KIWI", 1)), as_store(fake))

    assert event.name == "StockReservationFailed"
    assert body(event)["reason"].startswith("unknown_sku")
    assert "KIWI" in body(event)["reason"]
    assert fake.available == {"APPLE": 5, "PEAR": 3}


async def test_a_second_order_placed_reserves_nothing_more(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2)), as_store(fake))

    assert await on_order_placed(order_placed(("APPLE", 2)), as_store(fake)) == []
    assert fake.available["APPLE"] == 3


async def test_orders_do_not_oversell(fake: FakeInventoryStore) -> None:
    [first] = await on_order_placed(order_placed(("PEAR", 2), order_id=ORDER), as_store(fake))
    [second] = await on_order_placed(order_placed(("PEAR", 2), order_id=OTHER), as_store(fake))

    assert (first.name, second.name) == ("StockReserved", "StockReservationFailed")
    assert fake.available["PEAR"] == 1


async def test_cancel_after_reserve_releases_exactly_once(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2), ("PEAR", 1)), as_store(fake))

    [released] = await on_order_cancelled(order_cancelled(), as_store(fake))
    again = await on_order_cancelled(order_cancelled(), as_store(fake))

    assert released.name == "StockReleased"
    assert body(released)["items"] == [
        {"sku": "APPLE", "quantity": 2},
        {"sku": "PEAR", "quantity": 1},
    ]
    assert again == []
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reserved == {"APPLE": 0, "PEAR": 0}
    assert fake.reservations[ORDER].status is ReservationStatus.RELEASED


async def test_cancel_after_failed_reservation_gives_nothing_back(
    fake: FakeInventoryStore,
) -> None:
    await on_order_placed(order_placed(("APPLE", 9)), as_store(fake))

    assert await on_order_cancelled(order_cancelled(), as_store(fake)) == []
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reservations[ORDER].status is ReservationStatus.FAILED


async def test_cancel_before_placed_leaves_a_tombstone(fake: FakeInventoryStore) -> None:
    assert await on_order_cancelled(order_cancelled(), as_store(fake)) == []
    assert fake.reservations[ORDER].status is ReservationStatus.CANCELLED

    assert await on_order_placed(order_placed(("APPLE", 2)), as_store(fake)) == []
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reservations[ORDER].status is ReservationStatus.CANCELLED
