"""Inventory's saga reactions against an in-memory InventoryStore."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
import pytest

import event_samples as samples
from fakes import FakeUnitOfWork
from fakes.inventory import FakeInventoryStore
from inventory import application
from inventory.application import EVENT_HANDLERS, on_order_cancelled, on_order_placed
from inventory.domain import ReservationStatus, quantities_by_sku
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event

ORDER = "5f0c3a8e-2d44-4c7e-8f0b-9a1d2e3f4a5b"
OTHER = "6a1d4b9f-3e55-4d8f-9a1c-0b2e3f4a5b6c"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


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
    [event] = await on_order_placed(order_placed(("PEAR", 1), ("APPLE", 2), ("APPLE", 1)), fake)

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
    await on_order_placed(order_placed(("APPLE", 1)), fake)

    assert fake.calls[:2] == [f"lock {ORDER}", f"read {ORDER}"]


async def test_one_short_sku_reserves_nothing(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(order_placed(("APPLE", 5), ("PEAR", 4)), fake)

    assert event.name == "StockReservationFailed"
    assert body(event) == {"order_id": ORDER, "reason": "insufficient_stock"}
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reserved == {"APPLE": 0, "PEAR": 0}
    assert fake.reservations[ORDER].status is ReservationStatus.FAILED


async def test_unknown_sku_fails_naming_it(fake: FakeInventoryStore) -> None:
    [event] = await on_order_placed(order_placed(("APPLE", 1), ("KIWI", 1)), fake)

    assert event.name == "StockReservationFailed"
    assert body(event)["reason"].startswith("unknown_sku")
    assert "KIWI" in body(event)["reason"]
    assert fake.available == {"APPLE": 5, "PEAR": 3}


async def test_a_second_order_placed_reserves_nothing_more(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2)), fake)

    assert await on_order_placed(order_placed(("APPLE", 2)), fake) == []
    assert fake.available["APPLE"] == 3


async def test_orders_do_not_oversell(fake: FakeInventoryStore) -> None:
    [first] = await on_order_placed(order_placed(("PEAR", 2), order_id=ORDER), fake)
    [second] = await on_order_placed(order_placed(("PEAR", 2), order_id=OTHER), fake)

    assert (first.name, second.name) == ("StockReserved", "StockReservationFailed")
    assert fake.available["PEAR"] == 1


async def test_cancel_after_reserve_releases_exactly_once(fake: FakeInventoryStore) -> None:
    await on_order_placed(order_placed(("APPLE", 2), ("PEAR", 1)), fake)

    [released] = await on_order_cancelled(order_cancelled(), fake)
    again = await on_order_cancelled(order_cancelled(), fake)

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
    await on_order_placed(order_placed(("APPLE", 9)), fake)

    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reservations[ORDER].status is ReservationStatus.FAILED


async def test_cancel_before_placed_leaves_a_tombstone(fake: FakeInventoryStore) -> None:
    assert await on_order_cancelled(order_cancelled(), fake) == []
    assert fake.reservations[ORDER].status is ReservationStatus.CANCELLED

    assert await on_order_placed(order_placed(("APPLE", 2)), fake) == []
    assert fake.available == {"APPLE": 5, "PEAR": 3}
    assert fake.reservations[ORDER].status is ReservationStatus.CANCELLED


async def test_stock_commands_and_queries_each_run_in_one_unit(fake: FakeInventoryStore) -> None:
    unit = FakeUnitOfWork(fake)

    level = await application.set_stock(unit, "KIWI", 7)
    assert (level.sku, level.available, level.reserved) == ("KIWI", 7, 0)
    assert (await application.stock_of(unit, "KIWI")).available == 7
    with pytest.raises(application.UnknownSkuError):
        await application.stock_of(unit, "NONE")
    with pytest.raises(application.NoReservationError):
        await application.reservation_of(unit, ORDER)
    assert (unit.commits, unit.rollbacks) == (1, 3)
