"""Each service's NATS user on a real nats-server configured as ``polysaga up`` configures it:
the permissions let the service do all it does, and the server refuses everything else."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError

from event_samples import order_cancelled, order_placed, sample
from polysaga.events import declaration
from polysaga.events.envelope import new_event, to_headers
from polysaga.messaging.connection import connect, consumer_config, ensure_consumers, ensure_streams
from polysaga.messaging.permissions import all_permissions, replay_consumer_name
from polysaga_tools.servers import NatsServer, NatsUser, prepare_nats, wait_nats_ready

ADMIN = "admin"
REFUSED_WITHIN_S = 1.0


def password(user: str) -> str:
    return f"pw-{user}"


@pytest.fixture
def secured_nats() -> Iterator[NatsServer]:
    root = Path(tempfile.mkdtemp(prefix="polysaga-nats-users-"))
    users = {s: NatsUser(password(s), p) for s, p in all_permissions().items()}
    users[ADMIN] = NatsUser(password(ADMIN))
    server = prepare_nats(root, users=users)
    proc = subprocess.Popen(server.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_nats_ready(server)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def admin(secured_nats: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(secured_nats.url, user=ADMIN, password=password(ADMIN))
    await ensure_streams(nc.jetstream())
    yield nc
    await nc.close()


async def as_service(server: NatsServer, service: str) -> Client:
    return await connect(server.url, name=service, user=service, password=password(service))


def violations(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The server's permission violations as the service logs them (nats-py lowercases)."""
    messages = [r.getMessage().lower() for r in caplog.records]
    return [m for m in messages if "permissions violation" in m]


async def stream_messages(admin: Client, stream: str) -> int:
    return int((await admin.jetstream().stream_info(stream)).state.messages)


@pytest.mark.parametrize("service", sorted(declaration.services()))
async def test_each_service_can_do_everything_it_does(
    secured_nats: NatsServer, admin: Client, service: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Set-up, publish, consume, ack, dead-letter (and replay, for a read model) all pass."""
    caplog.set_level(logging.ERROR)
    nc = await as_service(secured_nats, service)
    try:
        js = nc.jetstream()
        await ensure_streams(js, service)
        await ensure_consumers(js, service, ack_wait_s=30)
        for spec in declaration.published_by(service):
            event = new_event(sample(spec.name))
            ack = await js.publish(spec.subject, b"{}", headers=to_headers(event), timeout=2)
            assert ack.stream == spec.context.stream
        for context, events in declaration.consumed_by(service).items():
            event = new_event(sample(events[0].name))
            await admin.jetstream().publish(events[0].subject, b"{}", headers=to_headers(event))
            sub = await js.pull_subscribe_bind(durable=service, stream=context.stream)
            (msg,) = await sub.fetch(1, timeout=5)
            await msg.in_progress()
            await msg.ack_sync(timeout=2)
            assert (await js.consumer_info(context.stream, service)).num_ack_pending == 0
            await sub.unsubscribe()
            dead = declaration.dead_letter_subject(service, msg.subject)
            assert (await js.publish(dead, msg.data, timeout=2)).stream == "DEADLETTER"
            if service in declaration.READ_MODELS:
                name = replay_consumer_name(service)
                config = consumer_config(service, events, ack_wait_s=5)
                await js.add_consumer(
                    context.stream, config.evolve(name=name, durable_name=None), timeout=2
                )
                replay = await js.pull_subscribe_bind(consumer=name, stream=context.stream)
                assert len(await replay.fetch(1, timeout=5)) == 1
                await replay.unsubscribe()
                await js.delete_consumer(context.stream, name)
    finally:
        await nc.close()
    assert violations(caplog) == []


async def test_publishing_another_contexts_event_is_refused(
    secured_nats: NatsServer, admin: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    nc = await as_service(secured_nats, "inventory")
    try:
        forged = new_event(order_placed())
        with pytest.raises(NatsTimeoutError):  # the server drops it: no stream acknowledges
            await nc.jetstream().publish(
                forged.subject, b"{}", headers=to_headers(forged), timeout=REFUSED_WITHIN_S
            )
        # Someone else's dead letters, too.
        await nc.publish("deadletter.payment.orders.events.OrderPlaced", b"{}")
        await nc.flush()
        await asyncio.sleep(0.2)
    finally:
        await nc.close()
    assert await stream_messages(admin, "ORDERS") == 0
    assert await stream_messages(admin, "DEADLETTER") == 0
    refused = violations(caplog)
    assert any('publish to "orders.events.orderplaced"' in v for v in refused), refused
    assert any("deadletter.payment." in v for v in refused), refused


async def test_consuming_what_it_does_not_consume_is_refused(
    secured_nats: NatsServer, admin: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    await ensure_consumers(admin.jetstream(), "payment", ack_wait_s=30)
    cancelled = new_event(order_cancelled())  # payment consumes it
    await admin.jetstream().publish(cancelled.subject, b"{}", headers=to_headers(cancelled))
    nc = await as_service(secured_nats, "inventory")  # consumes ORDERS, never PAYMENTS
    js = nc.jetstream()
    try:
        # A consumer of its own name on a stream it does not consume.
        with pytest.raises(NatsTimeoutError):
            await js.add_consumer(
                "PAYMENTS",
                consumer_config("inventory", declaration.published_by("payment"), ack_wait_s=30),
                timeout=REFUSED_WITHIN_S,
            )
        # Another service's durable on a stream it does consume: neither read nor fetched.
        with pytest.raises(NatsTimeoutError):
            await js.consumer_info("ORDERS", "payment", timeout=REFUSED_WITHIN_S)
        stolen = await js.pull_subscribe_bind(durable="payment", stream="ORDERS")
        with pytest.raises((NatsTimeoutError, TimeoutError)):
            await stolen.fetch(1, timeout=REFUSED_WITHIN_S)
        # Plain subscriptions to event subjects, and to another service's replies.
        await nc.subscribe("orders.events.>")
        await nc.subscribe("_INBOX.payment.>")
        await nc.flush()
        await asyncio.sleep(0.2)
        # Nor may it reconfigure or delete a stream it only consumes.
        with pytest.raises(NatsTimeoutError):
            await js.delete_stream("ORDERS")
    finally:
        await nc.close()
    info = await admin.jetstream().consumer_info("ORDERS", "payment")
    assert info.num_pending == 1 and info.delivered.stream_seq == 0  # untouched
    with pytest.raises(NotFoundError):
        await admin.jetstream().consumer_info("PAYMENTS", "inventory")
    refused = violations(caplog)
    for subject in ("orders.events.>", "_INBOX.payment.>", "$JS.API.STREAM.DELETE.ORDERS"):
        assert any(subject.lower() in v for v in refused), (subject, refused)


async def test_no_anonymous_or_wrong_password_connection(secured_nats: NatsServer) -> None:
    for user, secret in ((None, None), ("order", "not-its-password")):
        with pytest.raises((NoServersError, nats.errors.Error)):
            await nats.connect(
                secured_nats.url,
                user=user,
                password=secret,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=2,
            )
