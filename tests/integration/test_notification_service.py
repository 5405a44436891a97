"""The notification service in-process on real NATS JetStream, PostgreSQL and SMTP (aiosmtpd
writing to a Maildir): one mail per order outcome, none more under redelivery or
re-publication, a retry until the user's address arrives, NotificationSent on its stream,
and the documented crash window (SMTP accepted, commit lost) resending the same message."""

from __future__ import annotations

import mailbox
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage, Message
from typing import Any

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import text

from event_samples import order_lines, sample, user_profile_updated, user_registered
from notification.adapters import MIGRATIONS, SmtpMailer
from notification.bootstrap import build, event_handlers
from polysaga.app import create_app
from polysaga.events.envelope import NATS_MSG_ID, Envelope, encode_body, new_event, to_headers
from polysaga.messaging.connection import ensure_streams
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import create_engine, migrate
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer, SmtpServer
from waiting import eventually

pytestmark = pytest.mark.integration

USER_ID = "9c4b7a2e-1f3d-4e5a-8b6c-7d8e9f0a1b2c"
EMAIL = "ada@example.org"


def settings_for(database_url: str, nats_url: str, smtp_port: int) -> ServiceSettings:
    return ServiceSettings(
        service_name="notification",
        database_url=database_url,
        nats_url=nats_url,
        smtp_port=smtp_port,
        relay_poll_interval_s=0.1,
        redelivery_backoff_s=0.1,
        redelivery_backoff_max_s=0.3,
        max_deliveries=100,
    )


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc: Client = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context)
    yield context
    await nc.close()


@pytest.fixture
async def service(
    database_url: str, nats_server: NatsServer, smtp_server: SmtpServer
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = settings_for(database_url, nats_server.url, smtp_server.port)
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
        yield client


def registered(email: str = EMAIL, version: int = 1) -> Envelope[Any]:
    payload = user_registered(
        user_id=uuid.UUID(USER_ID), name="Ada Lovelace", email=email, version=version
    )
    return new_event(payload)


def outcome(name: str, order_id: str, **extra: object) -> Envelope[Any]:
    payload = sample(
        name,
        order_id=uuid.UUID(order_id),
        user_id=USER_ID,
        total="30.00",
        items=order_lines(("SKU-7", 3, "10.00")),
        **extra,
    )
    return new_event(payload)


async def publish(js: JetStreamContext, event: Envelope[Any], *, msg_id: str | None = None) -> None:
    headers = to_headers(event)
    if msg_id is not None:
        headers[NATS_MSG_ID] = msg_id  # a new message to the server, the same event to us
    await js.publish(event.subject, encode_body(event.data), headers=headers)


def mails(smtp_server: SmtpServer) -> list[Message]:
    box = mailbox.Maildir(smtp_server.maildir, create=False)
    return [box[key] for key in box.keys()]  # noqa: SIM118 - Maildir is not a dict


async def settled(js: JetStreamContext, stream: str = "ORDERS") -> bool:
    """The service's consumer of ``stream`` has nothing pending and nothing unacknowledged:
    every message published so far has been handled (and any mail for it sent)."""
    info = await js.consumer_info(stream, "notification")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def addresses_known(js: JetStreamContext) -> Callable[[], Awaitable[bool]]:
    return lambda: settled(js, "USERS")


async def outbox_drained(database_url: str) -> bool:
    """Nothing the service recorded is still waiting to be published."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            pending = await conn.execute(
                text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
            return pending.scalar_one() == 0
    finally:
        await engine.dispose()


async def notifications_published(js: JetStreamContext) -> list[dict[str, Any]]:
    info = await js.stream_info("NOTIFICATIONS")
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe("notifications.events.>", stream="NOTIFICATIONS")
    msgs = await sub.fetch(int(info.state.messages), timeout=2)
    await sub.unsubscribe()
    decoded: list[dict[str, Any]] = []
    for msg in msgs:
        body: dict[str, Any] = msgspec.json.decode(msg.data)
        decoded.append(body | {"ce-type": (msg.headers or {}).get("ce-type")})
    return decoded


async def test_one_mail_per_outcome_even_when_the_event_comes_again(
    service: AsyncTestClient[Any], js: JetStreamContext, smtp_server: SmtpServer, database_url: str
) -> None:
    order_id = str(uuid.uuid4())
    await publish(js, registered())
    await eventually(addresses_known(js))  # another stream: the address first in this test
    confirmed = outcome("OrderConfirmed", order_id)
    await publish(js, confirmed)

    async def one_mail() -> bool:
        return len(mails(smtp_server)) == 1

    await eventually(one_mail)
    (mail,) = mails(smtp_server)
    assert mail["X-RcptTo"] == EMAIL
    assert mail["To"] == EMAIL
    assert mail["Subject"] == f"Your order {order_id} is confirmed"
    assert mail["Message-ID"] == f"<{order_id}.confirmed@polysaga>"

    async def one_published() -> bool:
        return len(await notifications_published(js)) == 1

    await eventually(one_published)
    (sent,) = await notifications_published(js)
    assert sent["ce-type"] == "io.polysaga.NotificationSent.v1"
    assert sent["order_id"] == order_id and sent["outcome"] == "confirmed"
    assert sent["to"] == EMAIL and sent["message_id"] == mail["Message-ID"]

    response = await service.get("/notifications", params={"order_id": order_id})
    assert response.status_code == 200
    (listed,) = response.json()
    assert listed["outcome"] == "confirmed" and listed["to"] == EMAIL
    assert listed["message_id"] == mail["Message-ID"]

    # The same event again (same ce-id; a new Nats-Msg-Id so the server keeps it): the
    # inbox recognises it.
    await publish(js, confirmed, msg_id=str(uuid.uuid4()))
    # The same outcome as a new event (a re-publication the inbox cannot recognise): the
    # (order_id, outcome) record does.
    await publish(js, outcome("OrderConfirmed", order_id))
    # Both handled (a mail is sent before its message is acked), and nothing recorded is
    # still on its way to the stream: what is there now is all there will be.
    await eventually(lambda: settled(js))
    await eventually(lambda: outbox_drained(database_url))
    assert len(mails(smtp_server)) == 1
    assert len(await notifications_published(js)) == 1
    assert len((await service.get(f"/notifications?order_id={order_id}")).json()) == 1


async def test_an_outcome_before_the_users_address_is_mailed_once_the_address_arrives(
    service: AsyncTestClient[Any], js: JetStreamContext, smtp_server: SmtpServer
) -> None:
    order_id = str(uuid.uuid4())
    await publish(js, outcome("OrderCancelled", order_id, reason="payment_failed: no_funds"))

    async def retried() -> bool:
        info = await js.consumer_info("ORDERS", "notification")
        return bool(info.num_redelivered > 0)

    await eventually(retried)
    assert mails(smtp_server) == []

    await publish(js, registered(email="late@example.org"))

    async def one_mail() -> bool:
        return len(mails(smtp_server)) == 1

    await eventually(one_mail)
    (mail,) = mails(smtp_server)
    assert mail["X-RcptTo"] == "late@example.org"
    assert mail["Subject"] == f"Your order {order_id} was cancelled"
    assert b"the payment did not go through" in mail.get_payload(decode=True)
    await eventually(lambda: settled(js))
    assert len(mails(smtp_server)) == 1


async def test_a_newer_address_wins_and_an_older_one_is_ignored(
    service: AsyncTestClient[Any], js: JetStreamContext, smtp_server: SmtpServer
) -> None:
    await publish(js, registered(email="first@example.org", version=1))
    updated = new_event(
        user_profile_updated(
            user_id=uuid.UUID(USER_ID), name="Ada", email="second@example.org", version=2
        )
    )
    await publish(js, updated)
    await publish(js, registered(email="stale@example.org", version=1))  # e.g. a replay
    await eventually(addresses_known(js))
    order_id = str(uuid.uuid4())
    await publish(js, outcome("OrderConfirmed", order_id))

    async def one_mail() -> bool:
        return len(mails(smtp_server)) == 1

    await eventually(one_mail)
    assert mails(smtp_server)[0]["X-RcptTo"] == "second@example.org"


async def test_bad_order_id_is_a_400(service: AsyncTestClient[Any]) -> None:
    response = await service.get("/notifications", params={"order_id": "nope"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await service.get("/notifications")).status_code == 400


class CrashAfterAccept:
    """Hands the message to the real SMTP server, then fails as a crash before the commit
    would: the mail is out, the transaction is not."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.sender = mailer.sender
        self._mailer = mailer

    async def send(self, message: EmailMessage) -> None:
        await self._mailer.send(message)
        raise ConnectionResetError("process died after SMTP accepted the message")


async def test_a_crash_between_smtp_accept_and_commit_resends_the_same_message(
    database_url: str, smtp_server: SmtpServer
) -> None:
    engine = create_engine(database_url, pool_size=2)
    await migrate(engine, [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *MIGRATIONS])
    run = inbox.transactional_runner(engine)
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "orders@polysaga.local")
    crashing, healthy = event_handlers(CrashAfterAccept(mailer)), event_handlers(mailer)
    try:
        assert await run("notification", registered(), healthy["UserRegistered"])
        order_id = str(uuid.uuid4())
        confirmed = outcome("OrderConfirmed", order_id)

        with pytest.raises(ConnectionResetError):
            await run("notification", confirmed, crashing["OrderConfirmed"])
        assert await run("notification", confirmed, healthy["OrderConfirmed"])  # redelivery
        assert not await run("notification", confirmed, healthy["OrderConfirmed"])  # after commit

        first, second = mails(smtp_server)
        assert first["Message-ID"] == second["Message-ID"] == f"<{order_id}.confirmed@polysaga>"
        assert first["Date"] == second["Date"]
        assert first.get_payload() == second.get_payload()
        async with engine.connect() as conn:
            recorded = (await conn.execute(text("SELECT count(*) FROM notifications"))).scalar()
            staged = (
                await conn.execute(
                    text("SELECT count(*) FROM outbox WHERE event_type = 'NotificationSent'")
                )
            ).scalar()
        assert recorded == 1 and staged == 1
    finally:
        await engine.dispose()
