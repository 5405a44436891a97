"""A new event: its CloudEvents attributes follow from its typed payload."""

from __future__ import annotations

from datetime import datetime

import msgspec

from event_samples import order_placed, payment_processed, product_created, user_registered
from polysaga.events.envelope import (
    NATS_MSG_ID,
    encode_body,
    known_event_name,
    new_event,
    to_headers,
)

TRACE = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=1",
    "baggage": "order_id=order-1",
}


def test_new_event_uses_the_declared_version_producer_and_aggregate() -> None:
    payload = payment_processed()
    event = new_event(payload)

    assert (event.name, event.version) == ("PaymentProcessed", 2)
    assert event.source == "/polysaga/payment"
    assert event.subject == "payments.events.PaymentProcessed"
    assert event.aggregate_id == str(payload.order_id)
    assert event.order_id == str(payload.order_id)
    assert event.time.tzinfo is not None
    assert event.event_id != new_event(payload).event_id


def test_the_aggregate_is_the_context_s_own_id() -> None:
    user = user_registered()
    product = product_created(sku="PEAR")

    assert new_event(user).aggregate_id == str(user.user_id)
    assert new_event(product).aggregate_id == "PEAR"
    assert new_event(product).order_id is None


def test_headers_carry_the_cloudevents_attributes() -> None:
    event = new_event(order_placed(), trace_headers=TRACE)
    headers = to_headers(event)

    assert headers["ce-id"] == event.event_id
    assert headers[NATS_MSG_ID] == headers["ce-id"]
    assert headers["ce-type"] == "io.polysaga.OrderPlaced.v1"
    assert headers["ce-source"] == "/polysaga/order"
    assert headers["ce-subject"] == event.aggregate_id
    assert headers["ce-specversion"] == "1.0"
    assert datetime.fromisoformat(headers["ce-time"]) == event.time
    assert headers["traceparent"] == TRACE["traceparent"]


def test_the_body_is_the_payload_as_json() -> None:
    payload = order_placed()

    body = msgspec.json.decode(encode_body(payload))

    assert body["order_id"] == str(payload.order_id)
    assert body["items"] == [{"sku": "APPLE", "quantity": 2, "unit_price": "1.25"}]
    assert set(body) == set(payload.__struct_fields__)


def test_known_event_name_keeps_metric_labels_bounded() -> None:
    assert known_event_name("io.polysaga.OrderPlaced.v1") == "OrderPlaced"
    assert known_event_name("io.polysaga.PaymentProcessed.v7") == "PaymentProcessed"
    for bad in ("io.polysaga.OrderTeleported.v1", "garbage", "", "io.polysaga.OrderPlaced.v1\n"):
        assert known_event_name(bad) == "unknown"
