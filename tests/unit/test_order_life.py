"""The order's whole life, event-sourced: PaymentReceived once and only while pending,
OrderShipped only from CONFIRMED, OrderDelivered
only from SHIPPED, the state at any time of it, and snapshots at the default cadence that
replay to the same order as the full stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from order.domain import IllegalTransitionError, Order, OrderEvent, OrderStatus
from polysaga.events import payloads as P
from polysaga.settings import ServiceSettings

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
PRICES = {"TEA": Decimal("2.50")}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def whole_life() -> list[OrderEvent]:
    """Placed, paid, confirmed, shipped, delivered: an order's five events."""
    placed = Order.place(str(uuid.uuid4()), "u-1", [("TEA", 2)], PRICES, at(0), at(30))
    events = [placed]
    order = Order.start(placed)
    for step in (
        lambda o: o.receive_payment(Decimal("5.00"), at(1.5)),
        lambda o: o.confirm(at(2)),
        lambda o: o.ship("1Z-999-AA1", at(60)),
        lambda o: o.deliver(at(3600)),
    ):
        event = step(order)
        events.append(event)
        order = order.apply(event)
    return events


def test_an_order_lives_from_placed_to_delivered() -> None:
    events = whole_life()
    assert [e.name for e in events] == [
        "OrderPlaced",
        "PaymentReceived",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
    ]
    order = Order.replay(events)
    assert order is not None
    assert (order.status, order.version) == (OrderStatus.DELIVERED, 5)
    assert (order.tracking_number, order.paid_at) == ("1Z-999-AA1", at(1.5))
    shipped = events[3].data
    assert isinstance(shipped, P.OrderShipped) and shipped.shipped_at == at(60)


@pytest.mark.parametrize("status", ["PENDING", "CANCELLED", "SHIPPED", "DELIVERED"])
def test_only_a_confirmed_order_ships(status: str) -> None:
    events = whole_life()
    order = Order.start(events[0])
    if status == "CANCELLED":
        order = order.apply(order.cancel("payment_failed: no_account", at(1)))
    elif status != "PENDING":
        order = Order.replay(events[: 4 if status == "SHIPPED" else 5])
        assert order is not None
    with pytest.raises(IllegalTransitionError, match="only one that is CONFIRMED"):
        order.ship("1Z", at(100))


@pytest.mark.parametrize("upto", [1, 2, 3, 5])
def test_only_a_shipped_order_is_delivered(upto: int) -> None:
    order = Order.replay(whole_life()[:upto])
    assert order is not None
    with pytest.raises(IllegalTransitionError, match="only one that is SHIPPED"):
        order.deliver(at(100))


def test_the_state_as_of_any_time_of_its_life_is_the_replay_up_to_it() -> None:
    events = whole_life()
    stages = [(1, "PENDING"), (2, "PENDING"), (3, "CONFIRMED"), (4, "SHIPPED"), (5, "DELIVERED")]
    for upto, status in stages:
        as_of = events[upto - 1].occurred_at
        order = Order.replay(e for e in events if e.occurred_at <= as_of)
        assert order is not None and order.status.value == status, upto


def test_the_default_snapshot_cadence_is_reached_by_every_delivered_order() -> None:
    every = ServiceSettings().snapshot_every
    shipped = whole_life()[:4]  # placed, paid, confirmed, shipped
    assert any(version % every == 0 for version in range(1, len(shipped) + 1))


@pytest.mark.parametrize("snapshot_at", [1, 2, 3, 4, 5])
def test_replay_from_a_snapshot_equals_the_full_replay(snapshot_at: int) -> None:
    events = whole_life()
    taken = Order.replay(events[:snapshot_at])
    assert taken is not None
    stored = Order.from_snapshot(msgspec.json.decode(msgspec.json.encode(taken.to_snapshot())))
    assert Order.replay(events[snapshot_at:], stored) == Order.replay(events)


def test_a_payment_is_received_once_and_only_while_pending() -> None:
    events = whole_life()
    paid = Order.replay(events[:2])
    assert paid is not None and paid.status is OrderStatus.PENDING
    with pytest.raises(IllegalTransitionError, match="received already"):
        paid.receive_payment(Decimal("5.00"), at(3))
    for upto in (3, 4, 5):  # confirmed, shipped, delivered: the saga is over
        later = Order.replay(events[:upto])
        assert later is not None
        with pytest.raises(IllegalTransitionError, match="only one that is PENDING"):
            later.receive_payment(Decimal("5.00"), at(4000))
