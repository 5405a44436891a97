"""A mail server that refuses one recipient must never hold up the others' mail: a 5xx
refusal goes to the dead letters at once, a 4xx is retried with backoff, and the mail after
either goes out (the notification service in-process on real NATS and PostgreSQL, against an
SMTP server that refuses some recipients)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from litestar.testing import AsyncTestClient
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import text

from event_samples import order_confirmed, user_registered
from notification.bootstrap import build
from polysaga.app import create_app
from polysaga.events.envelope import Envelope, encode_body, new_event, to_headers
from polysaga.messaging.connection import ensure_streams
from polysaga.persistence.database import create_engine
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer, free_port
from waiting import eventually

pytestmark = pytest.mark.integration

REFUSED = "gone@example.org"
DEFERRED = "full@example.org"
GOOD = "ada@example.org"
REFUSED_USER = str(uuid.uuid4())
GOOD_USER = str(uuid.uuid4())


class Refusing:
    """Refuses REFUSED for good (550) and DEFERRED for now (452); keeps the rest."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.refusals: dict[str, int] = {}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, _: Any
    ) -> str:
        if address == REFUSED:
            self.refusals[address] = self.refusals.get(address, 0) + 1
            return "550 5.1.1 no such mailbox"
        if address == DEFERRED:
            self.refusals[address] = self.refusals.get(address, 0) + 1
            return "452 4.2.2 mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Refusing, int]]:
    handler = Refusing()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc: Client = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context)
    yield context
    await nc.close()


@pytest.fixture
async def service(
    database_url: str, nats_server: NatsServer, smtp: tuple[Refusing, int]
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = ServiceSettings(
        service_name="notification",
        database_url=database_url,
        nats_url=nats_server.url,
        smtp_port=smtp[1],
        relay_poll_interval_s=0.1,
        redelivery_backoff_s=0.1,
        redelivery_backoff_max_s=0.3,
        max_deliveries=100,  # a refusal that spent deliveries would hold on for a long time
    )
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
        yield client


async def publish(js: JetStreamContext, event: Envelope[Any]) -> None:
    await js.publish(event.subject, encode_body(event.data), headers=to_headers(event))


def registered(user_id: str, email: str) -> Envelope[Any]:
    return new_event(user_registered(user_id=uuid.UUID(user_id), name="N", email=email))


def confirmed(user_id: str) -> Envelope[Any]:
    return new_event(order_confirmed(user_id=user_id))


async def dead_letter_reasons(js: JetStreamContext) -> list[str]:
    info = await js.stream_info("DEADLETTER")
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe("deadletter.>", stream="DEADLETTER")
    msgs = await sub.fetch(int(info.state.messages), timeout=2)
    await sub.unsubscribe()
    return [(m.headers or {})["polysaga-dead-letter-reason"] for m in msgs]


@pytest.mark.parametrize("address", [REFUSED, DEFERRED])
async def test_a_refused_recipient_does_not_hold_up_the_next_mail(
    service: AsyncTestClient[Any],
    js: JetStreamContext,
    smtp: tuple[Refusing, int],
    database_url: str,
    address: str,
) -> None:
    handler, _ = smtp
    await publish(js, registered(REFUSED_USER, address))
    await publish(js, registered(GOOD_USER, GOOD))
    engine = create_engine(database_url, pool_size=1)
    try:

        async def both_known() -> bool:
            async with engine.connect() as conn:
                count = (await conn.execute(text("SELECT count(*) FROM recipients"))).scalar()
            return count == 2

        await eventually(both_known)
    finally:
        await engine.dispose()

    await publish(js, confirmed(REFUSED_USER))

    async def refused_once() -> bool:
        return handler.refusals.get(address, 0) >= 1

    await eventually(refused_once)
    await publish(js, confirmed(GOOD_USER))

    async def good_mailed() -> bool:
        return GOOD in handler.delivered

    await eventually(good_mailed)
    if address == REFUSED:
        # Dead-lettered at once, tried once: a permanent refusal spends no more deliveries.
        await eventually(lambda: _has_rejection(js))
        assert handler.refusals[REFUSED] == 1
    else:
        # Retried with backoff while later mail went out.
        await eventually(lambda: _refused_again(handler))


async def _has_rejection(js: JetStreamContext) -> bool:
    return "rejected" in await dead_letter_reasons(js)


async def _refused_again(handler: Refusing) -> bool:
    return handler.refusals.get(DEFERRED, 0) >= 2
