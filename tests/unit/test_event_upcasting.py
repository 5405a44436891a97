"""Old event versions upcast to the current one; anything else is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from polysaga.events.envelope import Envelope
from polysaga.events.upcasting import UnsupportedVersionError, upcast


def envelope(name: str, version: int, data: dict[str, Any]) -> Envelope:
    return Envelope(
        event_id="e-1",
        name=name,
        version=version,
        source="/polysaga/payment",
        aggregate_id="order-1",
        time=datetime(2025, 1, 1, tzinfo=UTC),
        data=data,
        trace_headers={"traceparent": "tp"},
    )


def test_payment_processed_v1_upcasts_cents_to_a_money_string() -> None:
    old = envelope(
        "PaymentProcessed", 1, {"order_id": "order-1", "user_id": "user-1", "amount_cents": 1234}
    )

    new = upcast(old)

    assert new.version == 2
    assert new.data == {"order_id": "order-1", "user_id": "user-1", "amount": "12.34"}
    assert (new.event_id, new.aggregate_id, new.trace_headers) == (
        old.event_id,
        old.aggregate_id,
        old.trace_headers,
    )
    assert "amount_cents" in old.data  # the original is not mutated


@pytest.mark.parametrize(("cents", "amount"), [(0, "0.00"), (5, "0.05"), (100, "1.00")])
def test_cents_keep_two_places(cents: int, amount: str) -> None:
    new = upcast(envelope("PaymentProcessed", 1, {"order_id": "o", "amount_cents": cents}))

    assert new.data["amount"] == amount


def test_current_version_passes_unchanged() -> None:
    current = envelope("PaymentProcessed", 2, {"order_id": "o", "amount": "1.00"})

    assert upcast(current) == current


def test_a_newer_version_than_declared_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError):
        upcast(envelope("PaymentProcessed", 3, {"order_id": "o", "amount": "1.00"}))


def test_an_unknown_event_name_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError):
        upcast(envelope("OrderTeleported", 1, {}))


def test_an_old_version_without_an_upcaster_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError):
        upcast(envelope("OrderPlaced", 0, {}))


@pytest.mark.parametrize("data", [{"order_id": "o"}, {"order_id": "o", "amount_cents": "12.5"}])
def test_a_v1_body_that_cannot_be_upcast_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedVersionError):
        upcast(envelope("PaymentProcessed", 1, data))
