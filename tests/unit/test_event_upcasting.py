"""Old event versions upcast to the current one; anything else is refused."""

from __future__ import annotations

import pytest

from event_samples import payment_processed_v1
from polysaga.events import payloads as P
from polysaga.events.declaration import EVENTS
from polysaga.events.decoding import decode_payload
from polysaga.events.upcasting import UPCASTERS, UnsupportedVersionError, readable, upcast_payload


def test_payment_processed_v1_upcasts_cents_to_a_money_string() -> None:
    old = payment_processed_v1(amount_cents=1234)

    new = upcast_payload("PaymentProcessed", 1, old)

    assert new == P.PaymentProcessed(order_id=old.order_id, user_id=old.user_id, amount="12.34")


@pytest.mark.parametrize(
    ("cents", "amount"),
    [(0, "0.00"), (5, "0.05"), (100, "1.00"), (99_999_999_999_999, "999999999999.99")],
)
def test_cents_keep_two_places(cents: int, amount: str) -> None:
    new = upcast_payload("PaymentProcessed", 1, payment_processed_v1(amount_cents=cents))

    assert isinstance(new, P.PaymentProcessed)
    assert new.amount == amount


def test_a_stored_v1_body_decodes_as_the_current_version() -> None:
    old = payment_processed_v1(amount_cents=250)
    body = b'{"order_id": "%s", "user_id": "u", "amount_cents": 250}' % str(old.order_id).encode()

    assert decode_payload("PaymentProcessed", 1, body) == P.PaymentProcessed(
        order_id=old.order_id, user_id="u", amount="2.50"
    )


def test_a_newer_version_than_declared_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError, match="newer"):
        readable("PaymentProcessed", 3)


def test_an_unknown_event_name_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError, match="unknown"):
        readable("OrderTeleported", 1)


@pytest.mark.parametrize("version", [0, -1])
def test_an_old_version_without_a_body_is_refused(version: int) -> None:
    with pytest.raises(UnsupportedVersionError):
        readable("OrderPlaced", version)


@pytest.mark.parametrize("body", [b'{"order_id": "o"}', b'{"amount_cents": 12.5}'])
def test_a_v1_body_that_cannot_be_read_is_malformed_not_retried(body: bytes) -> None:
    from polysaga.events.decoding import MalformedEventError

    with pytest.raises(MalformedEventError):
        decode_payload("PaymentProcessed", 1, body)


@pytest.mark.parametrize("spec", EVENTS, ids=lambda s: s.name)
def test_every_readable_old_version_has_a_path_to_the_current_one(spec: object) -> None:
    assert isinstance(spec, type(EVENTS[0]))
    for version in spec.earlier:
        for step in range(version, spec.version):
            assert (spec.name, step) in UPCASTERS, f"{spec.name}.v{step} has no upcaster"
