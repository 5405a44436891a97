"""Notification's reactions against an in-memory store and a mailer that keeps what it is
given: one mail per (order, outcome), NotificationSent with it, a retry while the address
is unknown, and a version-guarded address replica."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

from event_samples import order_lines, sample
from fakes import FakeUnitOfWork
from fakes.notification import FakeNotificationStore, KeepingMailer
from notification.application import (
    EVENT_HANDLERS,
    RecipientUnknownError,
    notifications_of,
    on_order_outcome,
    on_user_changed,
)
from notification.domain import Outcome
from polysaga.events.envelope import Envelope, new_event

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


USER = "3b7e1c2a-9d4f-4e6a-8b1c-2d3e4f5a6b7c"


def user_event(name: str, version: int, email: str, user_id: str = USER) -> Envelope[Any]:
    payload = sample(name, user_id=uuid.UUID(user_id), name="Alice", email=email, version=version)
    return new_event(payload)


def outcome_event(name: str, order_id: str, **extra: object) -> Envelope[Any]:
    payload = sample(
        name,
        order_id=uuid.UUID(order_id),
        user_id=USER,
        total="10.00",
        items=order_lines(("SKU-1", 1, "10.00")),
        **extra,
    )
    return new_event(payload, trace_headers=TRACE)


def body(event: Envelope[Any]) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event.data)
    return data


async def test_an_outcome_sends_one_mail_and_emits_notification_sent() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()
    await on_user_changed(user_event("UserRegistered", 1, "alice@example.org"), store, mailer)
    order_id = str(uuid.uuid4())
    emitted = await on_order_outcome(outcome_event("OrderConfirmed", order_id), store, mailer)
    (message,) = mailer.messages
    assert message["To"] == "alice@example.org"
    (sent,) = emitted
    assert sent.name == "NotificationSent" and sent.aggregate_id == order_id
    assert sent.trace_headers == TRACE
    assert body(sent)["order_id"] == order_id
    assert body(sent)["outcome"] == "confirmed"
    assert body(sent)["to"] == "alice@example.org"
    assert body(sent)["message_id"] == f"<{order_id}.confirmed@polysaga>"
    assert store.sent[(order_id, Outcome.CONFIRMED)].message_id == body(sent)["message_id"]
    assert store.locks == [(order_id, Outcome.CONFIRMED)]


async def test_a_second_delivery_of_the_same_outcome_sends_nothing() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()
    await on_user_changed(user_event("UserRegistered", 1, "alice@example.org"), store, mailer)
    order_id = str(uuid.uuid4())
    first = outcome_event("OrderCancelled", order_id, reason="deadline_exceeded")
    assert await on_order_outcome(first, store, mailer)
    # The same outcome under another event id (the inbox cannot catch this one).
    again = outcome_event("OrderCancelled", order_id, reason="deadline_exceeded")
    assert await on_order_outcome(again, store, mailer) == []
    assert len(mailer.messages) == 1


async def test_confirmed_and_cancelled_of_one_order_are_two_notifications() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()
    await on_user_changed(user_event("UserRegistered", 1, "alice@example.org"), store, mailer)
    order_id = str(uuid.uuid4())
    await on_order_outcome(outcome_event("OrderConfirmed", order_id), store, mailer)
    await on_order_outcome(outcome_event("OrderCancelled", order_id, reason="x"), store, mailer)
    assert [m["X-Polysaga-Outcome"] for m in mailer.messages] == ["confirmed", "cancelled"]


async def test_an_unknown_address_raises_so_the_consumer_retries_and_nothing_is_sent() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()
    with pytest.raises(RecipientUnknownError):
        await on_order_outcome(outcome_event("OrderConfirmed", str(uuid.uuid4())), store, mailer)
    assert mailer.messages == [] and store.sent == {} and store.locks == []


async def test_the_replica_keeps_the_newest_version_and_measures_lag() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()

    def observations() -> float:
        value = REGISTRY.get_sample_value(
            "polysaga_consistency_lag_seconds_count", {"read_model": "notification-users"}
        )
        return value or 0.0

    before = observations()
    await on_user_changed(user_event("UserProfileUpdated", 2, "new@example.org"), store, mailer)
    await on_user_changed(user_event("UserRegistered", 1, "old@example.org"), store, mailer)
    assert store.recipients[USER].email == "new@example.org"
    assert observations() == before + 1  # only the applied update is a measurement


def test_the_handler_map_covers_what_the_declaration_says_notification_consumes() -> None:
    from polysaga.events import declaration

    consumed = {
        e.name for events in declaration.consumed_by("notification").values() for e in events
    }
    assert set(EVENT_HANDLERS) == consumed


async def test_what_was_sent_is_read_in_one_unit_that_commits_nothing() -> None:
    store, mailer = FakeNotificationStore(), KeepingMailer()
    await on_user_changed(user_event("UserRegistered", 1, "alice@example.org"), store, mailer)
    order_id = str(uuid.uuid4())
    await on_order_outcome(outcome_event("OrderConfirmed", order_id), store, mailer)
    unit = FakeUnitOfWork(store)

    (sent,) = await notifications_of(unit, order_id)

    assert (sent.order_id, sent.outcome, sent.recipient) == (
        order_id,
        Outcome.CONFIRMED,
        "alice@example.org",
    )
    assert await notifications_of(unit, str(uuid.uuid4())) == []
    assert unit.commits == 0
