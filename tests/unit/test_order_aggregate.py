"""The event-sourced Order aggregate: commands, evolution, replay and snapshots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
import pytest

from order.domain import (
    IllegalTransitionError,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderTooLargeError,
    UnknownProductError,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DEADLINE = NOW + timedelta(seconds=30)
PRICES = {"APPLE": Decimal("1.25"), "PEAR": Decimal("0.40"), "PLUM": Decimal("10.00")}
ORDER_ID = str(uuid.uuid4())


def placed(quantities: list[tuple[str, int]] | None = None) -> OrderEvent:
    return Order.place(
        ORDER_ID, "user-1", quantities or [("APPLE", 2), ("PEAR", 3)], PRICES, NOW, DEADLINE
    )


def data_of(event: OrderEvent) -> dict[str, Any]:
    """The event's body as it travels."""
    body: dict[str, Any] = msgspec.to_builtins(event.data)
    return body


def pending() -> Order:
    return Order.start(placed())


def test_place_totals_unit_price_times_quantity() -> None:
    event = placed([("APPLE", 2), ("PEAR", 3), ("PLUM", 1)])

    assert event.name == "OrderPlaced"
    assert event.data.total == "13.70"  # 2*1.25 + 3*0.40 + 10.00
    assert event.occurred_at == NOW


def test_place_records_who_when_and_deadline() -> None:
    data = data_of(placed())

    assert data["order_id"] == ORDER_ID
    assert data["user_id"] == "user-1"
    assert datetime.fromisoformat(data["placed_at"]) == NOW
    assert datetime.fromisoformat(data["deadline_at"]) == DEADLINE


def test_place_merges_duplicate_skus_into_one_sorted_line() -> None:
    event = placed([("PEAR", 1), ("APPLE", 1), ("PEAR", 4)])

    assert data_of(event)["items"] == [
        {"sku": "APPLE", "quantity": 1, "unit_price": "1.25"},
        {"sku": "PEAR", "quantity": 5, "unit_price": "0.40"},
    ]
    assert event.data.total == "3.25"


def test_place_refuses_skus_without_a_price_and_names_them_all() -> None:
    with pytest.raises(UnknownProductError) as caught:
        placed([("APPLE", 1), ("KIWI", 1), ("BANANA", 2)])

    assert caught.value.skus == ["BANANA", "KIWI"]
    assert "BANANA" in str(caught.value)


def test_place_refuses_a_total_no_account_can_hold() -> None:
    dear = {"GEM": Decimal("999999999999.99")}
    assert Order.place(ORDER_ID, "u", [("GEM", 1)], dear, NOW, DEADLINE).data.total == (
        "999999999999.99"
    )
    with pytest.raises(OrderTooLargeError):
        Order.place(ORDER_ID, "u", [("GEM", 2)], dear, NOW, DEADLINE)


@pytest.mark.parametrize("quantity", [0, -1])
def test_place_refuses_non_positive_quantity(quantity: int) -> None:
    with pytest.raises(IllegalTransitionError):
        placed([("APPLE", 1), ("PEAR", quantity)])


def test_start_builds_a_pending_order_at_version_one() -> None:
    order = pending()

    assert order.status is OrderStatus.PENDING
    assert order.version == 1
    assert order.total == Decimal("3.70")
    assert order.items == (
        OrderLine("APPLE", 2, Decimal("1.25")),
        OrderLine("PEAR", 3, Decimal("0.40")),
    )
    assert order.placed_at == NOW
    assert order.deadline_at == DEADLINE
    assert order.cancel_reason is None


def test_a_stream_must_start_with_order_placed() -> None:
    confirmed = pending().confirm(NOW)

    with pytest.raises(IllegalTransitionError):
        Order.start(confirmed)


def test_order_placed_cannot_follow_an_existing_order() -> None:
    with pytest.raises(IllegalTransitionError):
        pending().apply(placed())


def test_confirm_moves_pending_to_confirmed_and_bumps_version() -> None:
    later = NOW + timedelta(seconds=5)
    order = pending()
    event = order.confirm(later)
    confirmed = order.apply(event)

    assert event.name == "OrderConfirmed"
    assert data_of(event)["order_id"] == ORDER_ID
    assert data_of(event)["total"] == "3.70"
    assert confirmed.status is OrderStatus.CONFIRMED
    assert confirmed.version == 2
    assert confirmed.updated_at == later
    assert order.status is OrderStatus.PENDING  # the aggregate is immutable


def test_cancel_moves_pending_to_cancelled_with_reason() -> None:
    order = pending()
    event = order.cancel("deadline_exceeded", NOW)
    cancelled = order.apply(event)

    assert event.name == "OrderCancelled"
    assert data_of(event)["reason"] == "deadline_exceeded"
    assert data_of(event)["user_id"] == "user-1"
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel_reason == "deadline_exceeded"
    assert cancelled.version == 2


@pytest.mark.parametrize("first", ["confirm", "cancel"])
@pytest.mark.parametrize("second", ["confirm", "cancel"])
def test_an_ended_order_refuses_confirm_and_cancel(first: str, second: str) -> None:
    order = pending()
    ended = order.apply(order.confirm(NOW) if first == "confirm" else order.cancel("x", NOW))

    command = ended.confirm if second == "confirm" else partial(ended.cancel, "again")

    with pytest.raises(IllegalTransitionError):
        command(NOW)


def test_replay_of_no_events_is_no_order() -> None:
    assert Order.replay([]) is None


def test_replay_folds_every_event() -> None:
    first = placed()
    order = Order.start(first)
    cancel = order.cancel("payment_failed: insufficient_funds", NOW)

    replayed = Order.replay([first, cancel])

    assert replayed == order.apply(cancel)
    assert replayed is not None
    assert replayed.version == 2


@pytest.mark.parametrize("end", [None, "confirm", "cancel"])
def test_snapshot_round_trips_through_json(end: str | None) -> None:
    order = pending()
    if end == "confirm":
        order = order.apply(order.confirm(NOW + timedelta(seconds=1)))
    elif end == "cancel":
        order = order.apply(order.cancel("stock_unavailable: x", NOW + timedelta(seconds=1)))

    stored = msgspec.json.decode(msgspec.json.encode(order.to_snapshot()))

    assert Order.from_snapshot(stored) == order


def test_replay_from_snapshot_plus_later_events_equals_full_replay() -> None:
    first = placed()
    snapshot = Order.from_snapshot(Order.start(first).to_snapshot())
    confirm = snapshot.confirm(NOW + timedelta(seconds=2))

    from_snapshot = Order.replay([confirm], snapshot)

    assert from_snapshot == Order.replay([first, confirm])
    assert from_snapshot is not None
    assert from_snapshot.status is OrderStatus.CONFIRMED
    assert from_snapshot.version == 2
