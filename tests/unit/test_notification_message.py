"""The e-mail an order outcome becomes: a pure function of the event and the recipient, so a
resend after a crash is the same message (same Message-ID, Date and body)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from uuid import UUID

import pytest

from event_samples import order_lines, sample
from notification.domain import (
    OrderOutcome,
    Outcome,
    Recipient,
    explain_cancel_reason,
    message_id,
    outcome_message,
)
from polysaga.events.payloads import OrderCancelled, OrderConfirmed

ORDER_ID = "6f1c2a52-6a3b-4d7e-9a43-0d5f7c1e2b3a"
DECIDED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
ALICE = Recipient("user-1", "Alice Example", "alice@example.org", 3)
SENDER = "orders@polysaga.local"


def outcome(name: str = "OrderConfirmed", **extra: object) -> OrderOutcome:
    data = sample(
        name,
        order_id=UUID(ORDER_ID),
        user_id="user-1",
        total="24.68",
        items=order_lines(("SKU-1", 2, "10.00"), ("SKU-2", 1, "4.68")),
        **extra,
    )
    assert isinstance(data, OrderConfirmed | OrderCancelled)
    return OrderOutcome.from_event(data, DECIDED_AT)


def test_a_confirmation_has_a_deterministic_message_id_and_the_order_in_it() -> None:
    message = outcome_message(outcome(), ALICE, SENDER)
    assert message["Message-ID"] == f"<{ORDER_ID}.confirmed@polysaga>"
    assert message["To"] == "alice@example.org"
    assert message["From"] == SENDER
    assert message["Subject"] == f"Your order {ORDER_ID} is confirmed"
    assert message["X-Polysaga-Outcome"] == "confirmed"
    text = message.get_content()
    assert "Hello Alice Example," in text
    assert "2 x SKU-1" in text and "1 x SKU-2" in text and "Total: 24.68" in text


def test_the_same_outcome_builds_the_same_bytes_every_time() -> None:
    first = outcome_message(outcome(), ALICE, SENDER).as_bytes()
    again = outcome_message(outcome(), ALICE, SENDER).as_bytes()
    assert first == again
    parsed = message_from_bytes(first, policy=default)
    assert parsed["Date"].datetime == DECIDED_AT


def test_a_cancellation_says_why_in_words_and_keeps_the_code() -> None:
    cancelled = outcome("OrderCancelled", reason="payment_failed: insufficient_funds")
    assert cancelled.outcome is Outcome.CANCELLED
    message = outcome_message(cancelled, ALICE, SENDER)
    assert message["Message-ID"] == f"<{ORDER_ID}.cancelled@polysaga>"
    assert message["Subject"] == f"Your order {ORDER_ID} was cancelled"
    text = message.get_content()
    assert "the payment did not go through" in text
    assert "reason code: payment_failed: insufficient_funds" in text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("stock_unavailable: insufficient_stock", "not in stock"),
        ("deadline_exceeded", "in time"),
        ("something_new", "could not be completed"),
        ("", "could not be completed"),
    ],
)
def test_cancel_reasons_are_explained(reason: str, words: str) -> None:
    assert words in explain_cancel_reason(reason)


def test_confirmed_and_cancelled_have_different_message_ids() -> None:
    assert message_id(ORDER_ID, Outcome.CONFIRMED) != message_id(ORDER_ID, Outcome.CANCELLED)


def test_an_address_with_a_line_break_cannot_inject_headers() -> None:
    mallory = Recipient("user-2", "Mallory", "m@example.org\r\nBcc: victim@example.org", 1)
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        outcome_message(outcome(), mallory, SENDER)
