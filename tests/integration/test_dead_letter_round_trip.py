"""Dead letters an operator can work with, on the real notification service (in-process, real
NATS JetStream, PostgreSQL and SMTP): a handler that fails is dead-lettered with its reason;
once the fault is gone a replay applies the effect once, a second replay is absorbed by the
inbox, a discarded letter is never replayed, and a replay that fails again is a new letter."""

from __future__ import annotations

import mailbox
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.js import JetStreamContext

from event_samples import order_confirmed, order_lines, user_registered
from notification.bootstrap import build
from polysaga.app import create_app
from polysaga.events.envelope import Envelope, encode_body, new_event, to_headers
from polysaga.messaging.connection import ensure_streams
from polysaga.messaging.dead_letters import Status
from polysaga.settings import ServiceSettings
from polysaga_tools.dead_letters import DeadLetterError, DeadLetterOffice
from polysaga_tools.servers import NatsServer, SmtpServer
from waiting import eventually

pytestmark = pytest.mark.integration

MAX_DELIVERIES = 3


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context)
    yield context
    await nc.close()


@pytest.fixture
async def service(
    database_url: str, nats_server: NatsServer, smtp_server: SmtpServer
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = ServiceSettings(
        service_name="notification",
        database_url=database_url,
        nats_url=nats_server.url,
        smtp_port=smtp_server.port,
        relay_poll_interval_s=0.1,
        redelivery_backoff_s=0.05,
        redelivery_backoff_max_s=0.2,
        max_deliveries=MAX_DELIVERIES,
    )
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
        yield client


async def publish(js: JetStreamContext, event: Envelope[Any]) -> None:
    await js.publish(event.subject, encode_body(event.data), headers=to_headers(event))


# Users are UUIDs (the user service makes them); these three are fixed for readability.
LATE_USER = "1d0c9b8a-7f6e-4d5c-8b4a-3f2e1d0c9b8a"
GONE_USER = "2e1d0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b"
NEVER_REGISTERED = "3f2e1d0c-9b8a-4f7e-8d6c-5b4a3f2e1d0c"


def confirmed(user_id: str) -> Envelope[Any]:
    items = order_lines(("SKU-7", 3, "10.00"))
    return new_event(order_confirmed(user_id=user_id, total="30.00", items=items))


def registered(user_id: str) -> Envelope[Any]:
    email = f"{user_id}@example.org"
    return new_event(user_registered(user_id=uuid.UUID(user_id), name="Ada", email=email))


def mails_for(smtp_server: SmtpServer, order_id: str) -> int:
    box = mailbox.Maildir(smtp_server.maildir, create=False)
    return sum(1 for m in box if m["Message-ID"] == f"<{order_id}.confirmed@polysaga>")


async def settled(js: JetStreamContext, stream: str = "ORDERS") -> bool:
    info = await js.consumer_info(stream, "notification")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_a_dead_letter_replayed_after_the_fault_is_gone_is_applied_exactly_once(
    service: AsyncTestClient[Any], js: JetStreamContext, smtp_server: SmtpServer
) -> None:
    office = DeadLetterOffice(js)
    # The fault: the users' addresses have not reached notification, so both outcomes fail.
    first, second = confirmed(LATE_USER), confirmed(GONE_USER)
    await publish(js, first)
    await publish(js, second)

    async def both_dead() -> bool:
        return len(await office.letters("notification")) == 2

    await eventually(both_dead)
    letters = {letter.event_id: letter for letter in await office.letters()}
    letter = letters[first.event_id]
    assert letter.service == "notification"
    assert letter.original_subject == "orders.events.OrderConfirmed"
    assert letter.reason == "exhausted"
    assert "RecipientUnknownError" in letter.detail
    assert letter.deliveries == MAX_DELIVERIES
    assert letter.first_seen <= letter.last_seen
    assert letter.status is Status.DEAD
    shown = await office.letter(letter.letter_id)
    assert shown.payload == encode_body(first.data)
    assert shown.headers["ce-id"] == first.event_id
    assert await office.letters("inventory") == []
    assert mails_for(smtp_server, first.aggregate_id) == 0

    # Remove the fault for one of them: its user's address arrives.
    await publish(js, registered(LATE_USER))
    await eventually(lambda: settled(js, "USERS"))  # the fault is gone before the replay
    discarded = await office.discard(letters[second.event_id].letter_id, "user closed the account")
    assert discarded.status is Status.DISCARDED

    replayed = await office.replay(letter.letter_id)
    assert replayed.stream == "ORDERS"

    async def mailed() -> bool:
        return mails_for(smtp_server, first.aggregate_id) == 1

    await eventually(mailed)
    notes = (await service.get("/notifications", params={"order_id": first.aggregate_id})).json()
    assert len(notes) == 1

    # Replayed again: the consumer's inbox has the event id, so nothing happens a second time.
    again = await office.replay(letter.letter_id)
    assert again.letter.resolution is not None and again.letter.resolution.replays == 2
    await eventually(lambda: settled(js))
    assert mails_for(smtp_server, first.aggregate_id) == 1
    notes = (await service.get("/notifications", params={"order_id": first.aggregate_id})).json()
    assert len(notes) == 1

    # The discarded letter is never replayed, by id or by --all.
    with pytest.raises(DeadLetterError, match="discarded"):
        await office.replay(discarded.letter_id)
    assert await office.replay_all("notification") == []
    statuses = {x.event_id: x.status for x in await office.letters("notification")}
    assert statuses == {first.event_id: Status.REPLAYED, second.event_id: Status.DISCARDED}
    (kept,) = [x for x in await office.letters() if x.event_id == second.event_id]
    assert kept.resolution is not None and kept.resolution.reason == "user closed the account"


async def test_a_replay_that_fails_again_becomes_a_new_letter_that_names_the_first(
    service: AsyncTestClient[Any], js: JetStreamContext
) -> None:
    office = DeadLetterOffice(js)
    event = confirmed(NEVER_REGISTERED)
    await publish(js, event)

    def letters(n: int) -> Callable[[], Awaitable[bool]]:
        async def enough() -> bool:
            return len(await office.letters("notification")) == n

        return enough

    await eventually(letters(1))
    (first,) = await office.letters("notification")
    await office.replay(first.letter_id)  # the fault is still there
    await eventually(letters(2))
    _, second = await office.letters("notification")
    assert second.event_id == event.event_id
    assert second.replay_of == first.letter_id
    assert second.first_seen == first.first_seen
    assert second.last_seen > first.last_seen
    assert second.status is Status.DEAD
    assert [r.letter.letter_id for r in await office.replay_all()] == [second.letter_id]


async def test_unknown_letters_services_and_empty_reasons_are_refused(
    service: AsyncTestClient[Any], js: JetStreamContext
) -> None:
    office = DeadLetterOffice(js)
    with pytest.raises(DeadLetterError, match="no dead letter 999"):
        await office.letter(999)
    with pytest.raises(DeadLetterError, match="unknown service"):
        await office.letters("nobody")
    event = confirmed(NEVER_REGISTERED)
    await publish(js, event)

    async def one() -> bool:
        return len(await office.letters()) == 1

    await eventually(one)
    (letter,) = await office.letters()
    with pytest.raises(DeadLetterError, match="needs a reason"):
        await office.discard(letter.letter_id, "  ")
    assert (await office.letter(letter.letter_id)).status is Status.DEAD
