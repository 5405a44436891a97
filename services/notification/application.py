"""Notification's reactions; the handler map at the bottom says who reacts to what.

An order outcome becomes one e-mail per (order_id, outcome). SMTP cannot join a database
transaction, so "exactly once" is exactly-once *effect* with a recognisable resend. The
handler runs inside the consumer's transaction (inbox record + effect + outbox row) in this
order: look up the address, lock (order, outcome), stop if a notification is already
recorded, hand the message to SMTP, record it, write NotificationSent to the outbox, commit,
ack. What a crash at each point does:

- before SMTP accepts: the transaction rolls back, nothing was sent; the redelivery sends.
- after SMTP accepted, before the commit (crash, lost connection, a retried deadlock): no
  record and no inbox row survive, so the redelivery sends again. The resend is the same
  message (same Message-ID ``<order_id.outcome@polysaga>``, same Date, same body), which a
  mail store or client can recognise as a duplicate. This window cannot be closed: an SMTP
  server and a database cannot commit together, and the alternative (record, commit, then
  send) loses the mail instead.
- after the commit, before the ack: the inbox finds the event id and nothing runs again.
- any later delivery of the outcome, even under a new event id (a re-publish after the
  inbox pruned the id): the (order_id, outcome) record, checked under the advisory lock,
  sends nothing. NotificationSent commits with the record, so it is published exactly
  when a notification is recorded, by the outbox relay (deduplicated by its event id).

If the user's address is not known yet (UserRegistered is on another stream and may come
later), the handler raises RecipientUnknownError: the transaction rolls back and the
consumer retries with exponential backoff. After ``max_deliveries`` tries (with the
defaults, 5 tries over about 7.5 s) the event is dead-lettered
(``deadletter.notification.orders.events.Order…``, counted in
``polysaga_dead_lettered_total``) and no mail is sent until someone replays it. An SMTP
server that refuses the message for good (5xx) sends it to the dead letters at once (reason
``rejected``); one that defers it (4xx) takes the backoff path; an SMTP server that cannot
be reached holds the message in place until it is back, like an outage of the database.
None of them holds up the other messages of the stream for longer than that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from notification.domain import OrderOutcome, Outcome, Recipient, outcome_message
from notification.ports import Mailer, Notification, NotificationStore
from polysaga import metrics
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import Payload
from polysaga.unit_of_work import UnitOfWork

REPLICA = "notification-users"

NotificationUnit = UnitOfWork[NotificationStore]


class RecipientUnknownError(LookupError):
    """The user's address has not reached the replica yet; try again later."""


async def notifications_of(uow: NotificationUnit, order_id: str) -> list[Notification]:
    """What was sent about an order, oldest first (at most one per outcome)."""
    async with uow:
        return await uow.store.notifications_of(order_id)


async def on_user_changed(
    event: Envelope[P.UserProfileEvent], store: NotificationStore, mailer: Mailer
) -> list[Envelope[Payload]]:
    """UserRegistered and UserProfileUpdated carry the whole profile: keep the newest."""
    data = event.data
    recipient = Recipient(str(data.user_id), data.name, data.email, data.version)
    if await store.save_recipient(recipient):
        lag = (datetime.now(UTC) - event.time).total_seconds()
        metrics.CONSISTENCY_LAG.labels(read_model=REPLICA).observe(max(0.0, lag))
    return []


async def on_order_outcome(
    event: Envelope[P.OrderOutcomeEvent], store: NotificationStore, mailer: Mailer
) -> list[Envelope[Payload]]:
    outcome = OrderOutcome.from_event(event.data, event.time)
    recipient = await store.recipient(outcome.user_id)
    if recipient is None:
        raise RecipientUnknownError(f"no address for user {outcome.user_id} yet")
    await store.lock_outcome(outcome.order_id, outcome.outcome)
    if await store.notification(outcome.order_id, outcome.outcome) is not None:
        return []  # sent for an earlier delivery of this outcome
    message = outcome_message(outcome, recipient, mailer.sender)
    await mailer.send(message)
    sent = Notification(
        order_id=outcome.order_id,
        outcome=outcome.outcome,
        user_id=outcome.user_id,
        recipient=recipient.email,
        subject=str(message["Subject"]),
        message_id=str(message["Message-ID"]),
        event_id=event.event_id,
        sent_at=datetime.now(UTC),
    )
    await store.record(sent)
    notified = P.NotificationSent(
        order_id=event.data.order_id,
        outcome="confirmed" if sent.outcome is Outcome.CONFIRMED else "cancelled",
        to=sent.recipient,
        message_id=sent.message_id,
        sent_at=sent.sent_at,
    )
    return [new_event(notified, trace_headers=event.trace_headers)]


Reaction = Callable[[Envelope[Any], NotificationStore, Mailer], Awaitable[list[Envelope[Payload]]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "UserRegistered": on_user_changed,
    "UserProfileUpdated": on_user_changed,
    "OrderConfirmed": on_order_outcome,
    "OrderCancelled": on_order_outcome,
}
