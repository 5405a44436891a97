"""CloudEvents headers and JSON body: the round trip, and what decode refuses."""

from __future__ import annotations

from datetime import datetime

import pytest

from polysaga.events.declaration import UnknownEventError
from polysaga.events.envelope import (
    NATS_MSG_ID,
    Envelope,
    MalformedEventError,
    decode,
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


def sample() -> Envelope:
    return new_event(
        "OrderPlaced",
        "order-1",
        {"order_id": "order-1", "items": [{"sku": "APPLE", "quantity": 2}], "total": "2.50"},
        trace_headers=TRACE,
    )


def good_headers() -> dict[str, str]:
    return to_headers(sample())


def test_new_event_uses_the_declared_version_and_producer() -> None:
    event = new_event("PaymentProcessed", "order-1", {"order_id": "order-1"})

    assert event.version == 2
    assert event.source == "/polysaga/payment"
    assert event.subject == "payments.events.PaymentProcessed"
    assert event.time.tzinfo is not None
    assert event.event_id != new_event("PaymentProcessed", "order-1", {}).event_id


def test_new_event_refuses_an_undeclared_name() -> None:
    with pytest.raises(UnknownEventError):
        new_event("OrderTeleported", "order-1", {})


def test_headers_carry_the_cloudevents_attributes() -> None:
    event = sample()
    headers = to_headers(event)

    assert headers["ce-id"] == event.event_id
    assert headers[NATS_MSG_ID] == headers["ce-id"]
    assert headers["ce-type"] == "io.polysaga.OrderPlaced.v1"
    assert headers["ce-source"] == "/polysaga/order"
    assert headers["ce-subject"] == "order-1"
    assert headers["ce-specversion"] == "1.0"
    assert datetime.fromisoformat(headers["ce-time"]) == event.time
    assert headers["traceparent"] == TRACE["traceparent"]


def test_decode_round_trips_to_headers() -> None:
    event = sample()

    assert decode(to_headers(event), encode_body(event.data)) == event


def test_decode_keeps_only_trace_headers() -> None:
    headers = {**good_headers(), "x-other": "1"}

    decoded = decode(headers, b"{}")

    assert decoded.trace_headers == TRACE


@pytest.mark.parametrize("headers", [None, {}])
def test_decode_refuses_a_message_without_headers(headers: dict[str, str] | None) -> None:
    with pytest.raises(MalformedEventError):
        decode(headers, b"{}")


@pytest.mark.parametrize(
    "missing", ["ce-id", "ce-type", "ce-source", "ce-subject", "ce-time", "ce-specversion"]
)
def test_decode_refuses_a_missing_header(missing: str) -> None:
    headers = good_headers()
    del headers[missing]

    with pytest.raises(MalformedEventError):
        decode(headers, b"{}")


@pytest.mark.parametrize(
    "ce_type",
    [
        "OrderPlaced.v1",
        "io.polysaga.OrderPlaced",
        "io.polysaga.OrderPlaced.vX",
        "io.polysaga.OrderPlaced.1",
        "com.example.OrderPlaced.v1",
        "io.polysaga.Order-Placed.v1",
        "",
    ],
)
def test_decode_refuses_a_bad_ce_type(ce_type: str) -> None:
    with pytest.raises(MalformedEventError):
        decode({**good_headers(), "ce-type": ce_type}, b"{}")


@pytest.mark.parametrize("specversion", ["0.3", "1", "2.0", ""])
def test_decode_refuses_another_specversion(specversion: str) -> None:
    with pytest.raises(MalformedEventError):
        decode({**good_headers(), "ce-specversion": specversion}, b"{}")


def test_decode_refuses_a_bad_ce_time() -> None:
    with pytest.raises(MalformedEventError):
        decode({**good_headers(), "ce-time": "yesterday"}, b"{}")


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b'{"a": 1', b"\xff\xfe"])
def test_decode_refuses_a_body_that_is_not_json(body: bytes) -> None:
    with pytest.raises(MalformedEventError):
        decode(good_headers(), body)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_decode_refuses_a_body_that_is_not_an_object(body: bytes) -> None:
    with pytest.raises(MalformedEventError):
        decode(good_headers(), body)


def test_decode_reads_name_and_version_from_ce_type() -> None:
    decoded = decode({**good_headers(), "ce-type": "io.polysaga.PaymentProcessed.v1"}, b"{}")

    assert (decoded.name, decoded.version) == ("PaymentProcessed", 1)


@pytest.mark.parametrize(
    ("ce_type", "name"),
    [
        ("io.polysaga.OrderPlaced.v1", "OrderPlaced"),
        ("io.polysaga.PaymentProcessed.v7", "PaymentProcessed"),
        ("io.polysaga.OrderTeleported.v1", "unknown"),
        ("garbage", "unknown"),
        ("", "unknown"),
    ],
)
def test_known_event_name_keeps_metric_labels_bounded(ce_type: str, name: str) -> None:
    assert known_event_name(ce_type) == name
