"""Inventory's saga reactions against an in-memory InventoryStore."""

from __future__ import annotations

from typing import cast

import pytest

from inventory.adapters import InventoryStore, Reservation
from inventory.application import (
    EVENT_HANDLERS,
    on_order_cancelled,
    on_order_placed,
    on_release_stock,
    on_reserve_stock,
)
from inventory.domain import ReservationStatus, quantities_by_sku
from polysaga.events.envelope import Envelope, new_event

ORDER = "order-1"
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


def order_placed(*items: tuple[str, int], order_id: str = ORDER) -> Envelope:
    return new_event(
        "OrderPlaced",
        order_id,
        {
            "order_id": order_id,
            "user_id": "user-1",
            "items": [{"sku": s, "quantity": q, "unit_price": "1.00"} for s, q in items],
            "total": "9.99",
        },
        trace_headers=TRACE,
    )


def order_cancelled(order_id: str = ORDER) -> Envelope:
    return new_event(
        "OrderCancelled",
        order_id,
        {"order_id": order_id, "user_id": "user-1", "reason": "x", "total": "9.99", "items": []},
    )


@pytest.fixture
def fake() -> FakeInventoryStore:
    return FakeInventoryStore({"APPLE": 5, "PEAR": 3})


def test_handler_map() -> None:
    assert {
        "OrderPlaced": on_order_placed,
        "OrderCancelled": on_order_cancelled,
        "ReserveStock": on_reserve_stock,
        "ReleaseStock": on_release_stock,
    } == EVENT_HANDLERS


def test_quantities_are_merged_per_sku_and_sorted() -> None:
    merged = quantities_by_sku(
        [
            {"sku": "PEAR", "quantity": 1},
            {"sku": "APPLE", "quantity": 2},
            {"sku": "PEAR", "quantity": 4},
        ]
    )

    assert list(merged.items()) == [("APPLE", 2), ("PEAR", 5)]


async def test_order_placed_reserves_every_line(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(
        order_placed(("PEAR", 1), ("APPLE", 2), ("APPLE", 1)), as_store(fake)
    )

    assert event.name == "StockReserved"
    assert event.aggregate_id == ORDER
    assert event.data == {
        "order_id": ORDER,
        "user_id": "user-1",
        "items": [{"sku": "APPLE", "quantity": 3}, {"sku": "PEAR", "quantity": 1}],
        "total": "9.99",
        "saga": "choreography",
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
    assert event.data == {"order_id": ORDER, "reason": "insufficient_stock"}
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reserved == {"APPLE": 0, "PEAR": 0}
    assert fake.reservations[ORDER].status is ReservationStatus.FAILED


async def test_unknown_sku_fails_naming_it(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(order_placed(("APPLE", 1), ("KIWI", 1)), as_store(fake))

    assert event.name == "StockReservationFailed"
    assert event.data["reason"].startswith("unknown_sku")
    assert "KIWI" in event.data["reason"]
    assert fake.available == {"APPLE": 5, "PEAR": 3}


async def test_a_second_order_placed_reserves_nothing_more(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2)), as_store(fake))

    assert await on_order_placed(order_placed(("APPLE", 2)), as_store(fake)) == []
    assert fake.available["APPLE"] == 3


async def test_orders_do_not_oversell(fake: FakeInventoryStore) -> None:
    [first] = await on_order_placed(order_placed(("PEAR", 2), order_id="a"), as_store(fake))
    [second] = await on_order_placed(order_placed(("PEAR", 2), order_id="b"), as_store(fake))

    assert (first.name, second.name) == ("StockReserved", "StockReservationFailed")
    assert fake.available["PEAR"] == 1


async def test_cancel_after_reserve_releases_exactly_once(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2), ("PEAR", 1)), as_store(fake))

    [released] = await on_order_cancelled(order_cancelled(), as_store(fake))
    again = await on_order_cancelled(order_cancelled(), as_store(fake))

    assert released.name == "StockReleased"
    assert released.data["items"] == [
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


# --- orchestration: commands, with the same rules, answered with a reply -----------------


def command(name: str, order_id: str = ORDER, **data: object) -> Envelope:
    return new_event(name, order_id, {"order_id": order_id, **data}, trace_headers=TRACE)


def reserve_stock(*items: tuple[str, int]) -> Envelope:
    lines = [{"sku": s, "quantity": q} for s, q in items]
    return command("ReserveStock", user_id="user-1", items=lines, total="9.99")


async def test_an_orchestrated_order_placed_is_left_to_the_orchestrator(
    fake: FakeInventoryStore,
) -> None:
    placed = order_placed(("APPLE", 1))
    placed = new_event("OrderPlaced", ORDER, {**placed.data, "saga": "orchestration"})
    assert await on_order_placed(placed, as_store(fake)) == []
    cancelled = order_cancelled()
    cancelled = new_event("OrderCancelled", ORDER, {**cancelled.data, "saga": "orchestration"})
    assert await on_order_cancelled(cancelled, as_store(fake)) == []
    assert fake.reservations == {} and fake.available == {"APPLE": 5, "PEAR": 3}


async def test_reserve_stock_reserves_announces_and_replies(fake: FakeInventoryStore) -> None:
    cmd = reserve_stock(("APPLE", 2))
    reserved, reply = await on_reserve_stock(cmd, as_store(fake))
    assert reserved.name == "StockReserved" and reserved.data["saga"] == "orchestration"
    assert (
        reply.name == "ReserveStockReply" and reply.subject == "inventory.replies.ReserveStockReply"
    )
    assert reply.data == {
        "order_id": ORDER,
        "command_id": cmd.event_id,
        "succeeded": True,
        "reason": None,
    }
    assert reply.trace_headers == TRACE
    # The same command again (re-sent): the decision stands, nothing is taken twice.
    (again,) = await on_reserve_stock(reserve_stock(("APPLE", 2)), as_store(fake))
    assert again.data["succeeded"] is True
    assert fake.available["APPLE"] == 3


async def test_reserve_stock_without_enough_stock_fails_with_the_reason(
    fake: FakeInventoryStore,
) -> None:
    failed, reply = await on_reserve_stock(reserve_stock(("PEAR", 4)), as_store(fake))
    assert failed.name == "StockReservationFailed"
    assert (reply.data["succeeded"], reply.data["reason"]) == (False, "insufficient_stock")
    assert fake.available["PEAR"] == 3


async def test_release_before_reserve_leaves_a_tombstone_a_late_reserve_respects(
    fake: FakeInventoryStore,
) -> None:
    (reply,) = await on_release_stock(command("ReleaseStock"), as_store(fake))
    assert reply.name == "ReleaseStockReply" and reply.data["succeeded"] is True
    (late,) = await on_reserve_stock(reserve_stock(("APPLE", 1)), as_store(fake))
    assert late.data == {
        "order_id": ORDER,
        "command_id": late.data["command_id"],
        "succeeded": False,
        "reason": "cancelled_before_reserve",
    }
    assert fake.available["APPLE"] == 5


async def test_release_stock_gives_back_once(fake: FakeInventoryStore) -> None:
    await on_reserve_stock(reserve_stock(("APPLE", 2)), as_store(fake))
    released, reply = await on_release_stock(command("ReleaseStock"), as_store(fake))
    assert released.name == "StockReleased" and reply.data["succeeded"] is True
    (again,) = await on_release_stock(command("ReleaseStock"), as_store(fake))
    assert again.data["succeeded"] is True
    assert fake.available == {"APPLE": 5, "PEAR": 3} and fake.reserved["APPLE"] == 0
