"""Dead letters as records: what the consumer writes, what an operator reads back, and what a
replay sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from event_samples import stock_reserved
from polysaga.events.envelope import NATS_MSG_ID, new_event, to_headers
from polysaga.messaging import dead_letters as dl

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _letter(original: dict[str, str], *, now: datetime = T0, seq: int = 7) -> dl.DeadLetter:
    headers = dl.letter_headers(
        original,
        service="payment",
        subject="inventory.events.StockReserved",
        stream="INVENTORY",
        stream_seq=41,
        reason=dl.Reason.EXHAUSTED,
        detail="ValueError('boom')" + "x" * 600,
        deliveries=5,
        entered_stream_at=T0 - timedelta(seconds=8),
        now=now,
    )
    return dl.DeadLetter.from_message(
        seq, "deadletter.payment.inventory.events.StockReserved", headers, b"{}", now
    )


def test_a_letter_keeps_the_original_headers_and_says_why_how_often_and_when() -> None:
    event = new_event(stock_reserved())
    letter = _letter(to_headers(event))
    assert letter.service == "payment"
    assert letter.original_subject == "inventory.events.StockReserved"
    assert letter.event_id == event.event_id
    assert letter.event_type == "io.polysaga.StockReserved.v1"
    assert letter.reason == "exhausted"
    assert letter.detail.startswith("ValueError('boom')")
    assert len(letter.detail) == dl.DETAIL_MAX_CHARS
    assert letter.deliveries == 5
    assert letter.first_seen == T0 - timedelta(seconds=8)
    assert letter.last_seen == T0
    assert letter.status is dl.Status.DEAD
    assert letter.replay_of is None
    # Deduplicated per stream message, not per event: a replay that fails again is a new letter.
    assert letter.headers[NATS_MSG_ID] == "payment:INVENTORY:41"


def test_a_replay_sends_the_original_message_under_a_new_message_id() -> None:
    event = new_event(stock_reserved())
    letter = _letter(to_headers(event))
    first, second = letter.replay_headers(), letter.replay_headers()
    for replay in (first, second):
        assert not set(replay) & {dl.REASON, dl.DETAIL, dl.DELIVERIES, dl.ORIGINAL_SUBJECT}
        assert replay["ce-id"] == event.event_id
        assert replay["ce-type"] == "io.polysaga.StockReserved.v1"
        assert replay[dl.REPLAY_OF] == "7"
        assert replay[NATS_MSG_ID] not in (event.event_id, letter.headers[NATS_MSG_ID])
    assert first[NATS_MSG_ID] != second[NATS_MSG_ID]


def test_a_replay_that_fails_again_keeps_when_the_message_was_first_seen() -> None:
    event = new_event(stock_reserved())
    letter = _letter(to_headers(event))
    again = _letter(letter.replay_headers(), now=T0 + timedelta(hours=1), seq=9)
    assert again.first_seen == letter.first_seen
    assert again.last_seen == T0 + timedelta(hours=1)
    assert again.replay_of == 7


def test_a_letter_without_the_newer_headers_falls_back_to_what_the_stream_knows() -> None:
    letter = dl.DeadLetter.from_message(
        3, "deadletter.inventory.orders.events.OrderPlaced", None, b"not json", T0
    )
    assert (letter.service, letter.original_subject) == ("inventory", "orders.events.OrderPlaced")
    assert (letter.reason, letter.deliveries, letter.event_id) == ("unknown", 0, "")
    assert letter.first_seen == letter.last_seen == T0


def test_a_resolution_survives_its_json_form() -> None:
    for resolution in (
        dl.Resolution(dl.Status.DISCARDED, T0, reason="test order, customer refunded by hand"),
        dl.Resolution(dl.Status.REPLAYED, T0, replays=2),
    ):
        assert dl.Resolution.from_json(resolution.to_json()) == resolution
