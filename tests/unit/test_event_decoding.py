"""The consumer edge's decoder, class by class: whatever the bytes and headers, ``decode``
returns a typed current-version event or raises MalformedEventError /
UnsupportedVersionError, never anything else (the consumer dead-letters both at once)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_samples import payment_processed_v1, sample
from polysaga.events import payloads as P
from polysaga.events.declaration import EVENTS
from polysaga.events.decoding import (
    MalformedEventError,
    UnsupportedVersionError,
    decode,
    decode_payload,
)
from polysaga.events.envelope import (
    MAX_EVENT_BODY_BYTES,
    Envelope,
    encode_body,
    new_event,
    to_headers,
)

NAMES = [spec.name for spec in EVENTS]


def message(
    name: str = "OrderPlaced", **fields: Any
) -> tuple[Envelope[Any], dict[str, str], bytes]:
    event = new_event(
        sample(name, **fields),
        trace_headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    return event, to_headers(event), encode_body(event.data)


def body_dict(
    name: str = "OrderPlaced", **fields: Any
) -> tuple[Envelope[Any], dict[str, str], dict[str, Any]]:
    event, headers, body = message(name, **fields)
    return event, headers, msgspec.json.decode(body)


def refused(
    headers: dict[str, str] | None, body: bytes, subject: str = "orders.events.OrderPlaced"
) -> str:
    with pytest.raises(MalformedEventError) as caught:
        decode(headers, body, subject)
    return str(caught.value)


# --- what decodes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_event_round_trips(name: str) -> None:
    event, headers, body = message(name)

    decoded = decode(headers, body, event.subject)

    assert decoded == event
    assert type(decoded.data) is type(event.data)


def test_an_old_version_is_decoded_by_its_own_struct_and_upcast() -> None:
    old = payment_processed_v1(amount_cents=1999)
    event, headers, _ = message("PaymentProcessed", order_id=old.order_id)
    headers["ce-type"] = "io.polysaga.PaymentProcessed.v1"

    decoded = decode(headers, msgspec.json.encode(old), event.subject)

    assert decoded.version == 2
    assert decoded.data == P.PaymentProcessed(
        order_id=old.order_id, user_id=old.user_id, amount="19.99"
    )


def test_only_trace_headers_are_kept_and_the_event_id_is_canonical() -> None:
    event, headers, body = message()
    headers |= {"x-other": "1", "ce-id": event.event_id.upper()}

    decoded = decode(headers, body, event.subject)

    assert decoded.trace_headers == event.trace_headers
    assert decoded.event_id == event.event_id


# --- class: bodies that are not UTF-8 -----------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"],
    ids=["bom-ish", "overlong", "surrogate", "truncated", "continuation"],
)
@pytest.mark.parametrize("field", ["user_id", "total", "placed_at"])
def test_invalid_utf8_in_any_string_is_malformed(bad: bytes, field: str) -> None:
    event, headers, body = message()
    original = msgspec.json.encode(getattr(event.data, field))
    assert original in body
    poisoned = body.replace(original, b'"' + bad + b'"', 1)

    refused(headers, poisoned)


def test_a_body_of_raw_bytes_is_malformed() -> None:
    _, headers, _ = message()
    for body in (b"\xff\xfe\x00\x01", b"", b"not json", b"{", b'{"a": 1', b"\x00" * 64):
        refused(headers, body)


# --- class: nesting ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deep_nesting_anywhere_is_malformed(depth: int) -> None:
    _, headers, doc = body_dict()
    deep = b"[" * depth + b"]" * depth
    deep_objects = b'{"a":' * depth + b"1" + b"}" * depth
    refused(headers, deep)
    refused(headers, deep_objects)
    for field in ("order_id", "items", "total"):
        encoded = msgspec.json.encode({k: (None if k == field else v) for k, v in doc.items()})
        refused(headers, encoded.replace(b"null", deep, 1))


# --- class: missing fields, unknown fields, wrong types ---------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_field_is_malformed(name: str) -> None:
    event, headers, doc = body_dict(name)
    for field in doc:
        detail = refused(
            headers,
            msgspec.json.encode({k: v for k, v in doc.items() if k != field}),
            event.subject,
        )
        assert field in detail


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_field_is_malformed(name: str) -> None:
    event, headers, doc = body_dict(name)
    refused(headers, msgspec.json.encode(doc | {"surprise": 1}), event.subject)


def test_an_unknown_field_in_a_line_is_malformed() -> None:
    event, headers, doc = body_dict()
    doc["items"][0]["discount"] = "1.00"
    refused(headers, msgspec.json.encode(doc), event.subject)


WRONG_VALUES: list[Any] = [None, 5, -1, 1.5, True, "x", "", [], {}, ["a"], {"a": 1}]


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_type_in_any_field_is_malformed(name: str) -> None:
    event, headers, doc = body_dict(name)
    for field, value in doc.items():
        for wrong in WRONG_VALUES:
            if wrong == value or (
                type(wrong) is type(value) and not isinstance(value, (list, dict))
            ):
                continue  # same type: covered by the value classes below
            with pytest.raises(MalformedEventError):
                decode(headers, msgspec.json.encode(doc | {field: wrong}), event.subject)


def test_the_forged_charge_of_issue_14_is_refused_at_the_edge() -> None:
    event, headers, doc = body_dict("StockReserved")
    refused(headers, msgspec.json.encode(doc | {"items": "x", "total": 5}), event.subject)


# --- class: ids, amounts, sizes -----------------------------------------------------------

NOT_UUIDS = [
    "",
    "x",
    "order-1",
    "1234",
    uuid.uuid4().hex,
    "{" + str(uuid.uuid4()) + "}",
    "urn:uuid:" + str(uuid.uuid4()),
    str(uuid.uuid4()) + "\n",
    str(uuid.uuid4()) + "0",
    str(uuid.uuid4())[:-1],
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    "0af76519-16cd-43dd-8448-eb211c80319c-",
]


@pytest.mark.parametrize("ce_id", NOT_UUIDS)
def test_a_ce_id_that_is_not_a_uuid_is_malformed(ce_id: str) -> None:
    _, headers, body = message()
    assert "ce-id" in refused(headers | {"ce-id": ce_id}, body)


@pytest.mark.parametrize("order_id", NOT_UUIDS[:-1])
def test_an_order_id_that_is_not_a_uuid_is_malformed(order_id: str) -> None:
    _event, headers, doc = body_dict()
    refused(headers | {"ce-subject": order_id}, msgspec.json.encode(doc | {"order_id": order_id}))


BAD_AMOUNTS: list[Any] = [
    "-5.00",
    "-0",
    "-0.01",
    "1e3",
    "1000000000000.00",
    "99999999999999999999",
    "NaN",
    "Infinity",
    "12.345",
    " 1.00",
    "1.00\n",
    "01.00",
    "1,00",
    "",
    5,
    -5,
    2.5,
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("OrderPlaced", "total"),
        ("StockReserved", "total"),
        ("PaymentProcessed", "amount"),
        ("ProductCreated", "price"),
    ],
)
def test_a_negative_overflowing_or_non_decimal_amount_is_malformed(
    name: str, field: str, amount: Any
) -> None:
    event, headers, doc = body_dict(name)
    refused(headers, msgspec.json.encode(doc | {field: amount}), event.subject)


@pytest.mark.parametrize("cents", [-1, 10**14, 2**63, 2**64 + 1, 1.5, "250"])
def test_v1_cents_out_of_range_are_malformed(cents: Any) -> None:
    event, headers, _ = message("PaymentProcessed")
    doc = msgspec.to_builtins(payment_processed_v1(order_id=uuid.UUID(event.aggregate_id))) | {
        "amount_cents": cents
    }
    refused(
        headers | {"ce-type": "io.polysaga.PaymentProcessed.v1"},
        msgspec.json.encode(doc),
        event.subject,
    )


@pytest.mark.parametrize("quantity", [0, -1, 10_001, 2**31, 2**64, 1.0, "2"])
def test_a_quantity_out_of_range_is_malformed(quantity: Any) -> None:
    _event, headers, doc = body_dict()
    doc["items"][0]["quantity"] = quantity
    refused(headers, msgspec.json.encode(doc))


@pytest.mark.parametrize("version", [0, -1, 2**31, 2**63])
def test_a_replica_version_out_of_range_is_malformed(version: int) -> None:
    event, headers, doc = body_dict("ProductPriceChanged")
    refused(headers, msgspec.json.encode(doc | {"version": version}), event.subject)


def test_too_many_lines_and_too_long_texts_are_malformed() -> None:
    event, headers, doc = body_dict()
    refused(headers, msgspec.json.encode(doc | {"items": doc["items"] * 101}))
    refused(headers, msgspec.json.encode(doc | {"items": []}))
    refused(headers, msgspec.json.encode(doc | {"user_id": "u" * 65}))
    event, headers, doc = body_dict("OrderCancelled")
    refused(headers, msgspec.json.encode(doc | {"reason": "r" * 8193}), event.subject)


def test_an_oversized_body_is_malformed_before_it_is_parsed() -> None:
    _, headers, _ = message()
    assert "exceeds" in refused(headers, b" " * (MAX_EVENT_BODY_BYTES + 1))


@pytest.mark.parametrize(
    ("name", "field", "text"),
    [
        ("OrderPlaced", "user_id", "user-1\n"),
        ("ProductCreated", "name", "Apple\x00"),
        ("ProductCreated", "sku", "APPLE\n"),
        ("UserRegistered", "email", "a@b.c\n"),
        ("UserRegistered", "name", "Ada\r\nBcc: x@y.z"),
        ("OrderCancelled", "reason", "deadline_exceeded\x7f"),
        ("NotificationSent", "message_id", "<x@y>\r\n"),
    ],
)
def test_a_control_character_in_any_text_is_malformed(name: str, field: str, text: str) -> None:
    event, headers, doc = body_dict(name)
    if field == "sku":
        headers["ce-subject"] = text
    refused(headers, msgspec.json.encode(doc | {field: text}), event.subject)


# --- class: attributes that do not fit the message --------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "payments.events.PaymentProcessed",
        "orders.events.OrderConfirmed",
        "orders.events.OrderPlaced.x",
        "deadletter.inventory.orders.events.OrderPlaced",
        "",
    ],
)
def test_a_ce_type_that_is_not_the_subject_s_is_malformed(subject: str) -> None:
    _, headers, body = message()
    assert "does not travel" in refused(headers, body, subject)


def test_a_ce_subject_that_is_not_the_body_s_aggregate_is_malformed() -> None:
    _, headers, body = message()
    for other in (str(uuid.uuid4()), "order-1", " "):
        assert "ce-subject" in refused(headers | {"ce-subject": other}, body)


@pytest.mark.parametrize(
    "ce_time",
    [
        "yesterday",
        "",
        "2025-01-01T00:00:00",
        "2025-13-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2025-01-01T00:00:00Z\n",
    ],
)
def test_a_bad_ce_time_is_malformed(ce_time: str) -> None:
    _, headers, body = message()
    assert "ce-time" in refused(headers | {"ce-time": ce_time}, body)


@pytest.mark.parametrize("field", ["placed_at", "deadline_at"])
@pytest.mark.parametrize(
    "time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2025-01-01T00:00:00", 0]
)
def test_a_body_time_without_offset_or_out_of_range_is_malformed(field: str, time: Any) -> None:
    _, headers, doc = body_dict()
    refused(headers, msgspec.json.encode(doc | {field: time}))


@pytest.mark.parametrize("headers", [None, {}])
def test_a_message_without_headers_is_malformed(headers: dict[str, str] | None) -> None:
    _, _, body = message()
    refused(headers, body)


@pytest.mark.parametrize(
    "missing", ["ce-id", "ce-type", "ce-source", "ce-subject", "ce-time", "ce-specversion"]
)
def test_a_missing_attribute_is_malformed(missing: str) -> None:
    _, headers, body = message()
    del headers[missing]
    refused(headers, body)


@pytest.mark.parametrize(
    "ce_type",
    [
        "OrderPlaced.v1",
        "io.polysaga.OrderPlaced",
        "io.polysaga.OrderPlaced.vX",
        "io.polysaga.OrderPlaced.v0",
        "io.polysaga.OrderPlaced.1",
        "io.polysaga.OrderPlaced.v1\n",
        "com.example.OrderPlaced.v1",
        "io.polysaga.Order-Placed.v1",
        "",
    ],
)
def test_a_bad_ce_type_is_malformed(ce_type: str) -> None:
    _, headers, body = message()
    refused(headers | {"ce-type": ce_type}, body)


@pytest.mark.parametrize("specversion", ["0.3", "1", "2.0", ""])
def test_another_specversion_is_malformed(specversion: str) -> None:
    _, headers, body = message()
    refused(headers | {"ce-specversion": specversion}, body)


@pytest.mark.parametrize(
    "ce_type",
    [
        "io.polysaga.OrderPlaced.v9",
        "io.polysaga.PaymentProcessed.v3",
        "io.polysaga.OrderTeleported.v1",
    ],
)
def test_an_unknown_version_or_event_is_unsupported_not_malformed(ce_type: str) -> None:
    _, headers, body = message()
    with pytest.raises(UnsupportedVersionError):
        decode(headers | {"ce-type": ce_type}, body, "orders.events.OrderPlaced")


# --- properties: no other exception, whatever comes in ----------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _decode_or_refuse(
    headers: dict[str, str] | None, body: bytes, subject: str
) -> Envelope[Any] | None:
    try:
        return decode(headers, body, subject)
    except (MalformedEventError, UnsupportedVersionError):
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), body=st.binary(max_size=512))
def test_arbitrary_bytes_are_refused_and_nothing_else_escapes(name: str, body: bytes) -> None:
    event, headers, _ = message(name)
    assert _decode_or_refuse(headers, body, event.subject) is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), field=st.integers(min_value=0), value=JSON)
def test_any_json_in_any_field_decodes_to_a_valid_payload_or_is_refused(
    name: str, field: int, value: Any
) -> None:
    event, headers, doc = body_dict(name)
    key = sorted(doc)[field % len(doc)]
    decoded = _decode_or_refuse(headers, msgspec.json.encode(doc | {key: value}), event.subject)
    if decoded is not None:  # a value of the right type: it survives a second round trip
        assert decode(headers, encode_body(decoded.data), event.subject) == decoded


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    attribute=st.sampled_from(
        ["ce-id", "ce-type", "ce-source", "ce-subject", "ce-time", "ce-specversion"]
    ),
    value=st.text(max_size=300),
)
def test_any_attribute_value_is_decoded_or_refused(attribute: str, value: str) -> None:
    event, headers, body = message()
    _decode_or_refuse(headers | {attribute: value}, body, event.subject)


@settings(max_examples=100)
@given(body=JSON)
def test_decode_payload_alone_refuses_with_one_of_two_errors(body: Any) -> None:
    with contextlib.suppress(MalformedEventError, UnsupportedVersionError):
        decode_payload("OrderPlaced", 1, msgspec.json.encode(body))


@pytest.mark.parametrize("source", ["/polysaga/inventory", "/polysaga/order\ufffd", "", "x" * 300])
def test_a_ce_source_that_is_not_the_event_s_producer_is_malformed(source: str) -> None:
    _, headers, body = message()
    assert "ce-source" in refused(headers | {"ce-source": source}, body)
