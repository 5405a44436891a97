"""The chart's NATS configuration, run by a real nats-server: the rendered nats.conf and
auth.conf (listen addresses and store directory moved onto this machine) load, and each
service's user may do exactly what the service's code does — set up streams and its durable
consumers, publish its own events, consume and acknowledge — and is refused the rest."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from chart_tools import APP_CHART, by_name, render
from polysaga.events import declaration
from polysaga.messaging.connection import ensure_consumers, ensure_streams
from polysaga.messaging.permissions import inbox_prefix, replay_consumer_name
from polysaga_tools.servers import NatsServer, find_binary, free_port, wait_nats_ready

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class ChartNats:
    server: NatsServer
    passwords: dict[str, str]


@pytest.fixture
def chart_nats(tmp_path: Path) -> Iterator[ChartNats]:
    docs = render(APP_CHART, values={"nats.syncAlways": True})
    config = by_name(docs, "ConfigMap", "polysaga-nats-config")["data"]
    secret = by_name(docs, "Secret", "polysaga-nats-users")["data"]
    passwords = {user: base64.b64decode(value).decode() for user, value in secret.items()}
    port, monitor = free_port(), free_port()
    store = tmp_path / "jetstream"
    nats_conf = (
        config["nats.conf"]
        .replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{port}")
        .replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{monitor}")
        .replace("store_dir: /data/jetstream", f'store_dir: "{store}"')
    )
    assert str(port) in nats_conf and str(store) in nats_conf, "the rendered config moved"
    (tmp_path / "nats.conf").write_text(nats_conf)
    (tmp_path / "auth.conf").write_text(config["auth.conf"])
    # The StatefulSet's environment: the pod name and one password variable per service.
    env = dict(os.environ, POD_NAME="polysaga-nats-0")
    for user, password in passwords.items():
        env[f"PASSWORD_{user.upper().replace('-', '_')}"] = password
    server = NatsServer(port, monitor, store, tmp_path / "nats.conf")
    checked = subprocess.run(
        [find_binary("nats-server"), "-t", "-c", str(server.config_file)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    log = (tmp_path / "nats.log").open("wb")
    proc = subprocess.Popen(server.argv(), env=env, stdout=log, stderr=log)
    try:
        wait_nats_ready(server)
        yield ChartNats(server, passwords)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(tmp_path, ignore_errors=True)


class Session:
    """A service's connection, collecting the errors the server sends (permission violations)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def connect(self, nats_: ChartNats, user: str, password: str | None = None) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            nats_.server.url,
            user=user,
            password=password if password is not None else nats_.passwords[user],
            error_cb=on_error,
            allow_reconnect=False,
            # As the services connect: replies come to the user's own inbox subjects only.
            inbox_prefix=inbox_prefix(user),
        )
        return self.nc


@pytest.fixture
async def sessions() -> AsyncIterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for session in opened:
        if session.nc is not None and session.nc.is_connected:
            await session.nc.close()


async def _open(
    chart_nats: ChartNats, sessions: list[Session], user: str
) -> tuple[Session, Client]:
    session = Session()
    sessions.append(session)
    return session, await session.connect(chart_nats, user)


async def test_each_service_sets_up_its_streams_and_consumers_and_publishes_its_events(
    chart_nats: ChartNats, sessions: list[Session]
) -> None:
    for service in sorted(declaration.services()):
        session, nc = await _open(chart_nats, sessions, service)
        js = nc.jetstream()
        await ensure_streams(js, service)
        await ensure_consumers(js, service, ack_wait_s=30)
        for event in declaration.published_by(service):
            ack = await js.publish(event.subject, b"{}", headers={"Nats-Msg-Id": event.name})
            assert ack.stream == event.context.stream
        for context in declaration.consumed_by(service):
            info = await js.consumer_info(context.stream, service)
            assert info.name == service
        await nc.flush()
        assert session.errors == [], (service, session.errors)


async def test_a_consumer_fetches_acknowledges_and_dead_letters_its_own_messages(
    chart_nats: ChartNats, sessions: list[Session]
) -> None:
    _, order = await _open(chart_nats, sessions, "order")
    await ensure_streams(order.jetstream(), "order")
    session, inventory = await _open(chart_nats, sessions, "inventory")
    js = inventory.jetstream()
    await ensure_streams(js, "inventory")
    await ensure_consumers(js, "inventory", ack_wait_s=30)
    await order.jetstream().publish("orders.events.OrderPlaced", b"{}")
    sub = await js.pull_subscribe_bind(durable="inventory", stream="ORDERS")
    (msg,) = await sub.fetch(1, timeout=5)
    await msg.ack_sync()
    dead = declaration.dead_letter_subject("inventory", msg.subject)
    assert (await js.publish(dead, b"{}")).stream == declaration.DEAD_LETTER_STREAM
    await inventory.flush()
    assert session.errors == []


async def test_order_view_may_replay_streams_with_its_replay_consumer(
    chart_nats: ChartNats, sessions: list[Session]
) -> None:
    session, nc = await _open(chart_nats, sessions, "order-view")
    js = nc.jetstream()
    await ensure_streams(js, "order-view")
    await js.stream_info("ORDERS")
    replay = replay_consumer_name("order-view")
    config = ConsumerConfig(
        name=replay,
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        inactive_threshold=60,
    )
    await js.add_consumer("ORDERS", config)
    sub = await js.pull_subscribe_bind(consumer=replay, stream="ORDERS")
    await sub.consumer_info()
    await js.delete_consumer("ORDERS", replay)
    await nc.flush()
    assert session.errors == []


@pytest.mark.parametrize(
    ("service", "subject"),
    [
        ("payment", "orders.events.OrderConfirmed"),  # another context's events
        ("order-view", "orders.events.OrderPlaced"),  # a read model publishes nothing
        ("inventory", "deadletter.payment.orders.events.OrderPlaced"),  # another's dead letters
    ],
)
async def test_a_service_may_not_publish_what_it_does_not_own(
    chart_nats: ChartNats, sessions: list[Session], service: str, subject: str
) -> None:
    session, nc = await _open(chart_nats, sessions, service)
    await nc.publish(subject, b"{}")
    await nc.flush()
    for _ in range(50):  # the violation arrives asynchronously
        if session.errors:
            break
        await asyncio.sleep(0.05)
    # nats-py reports the server's -ERR in lower case.
    violation = f'permissions violation for publish to "{subject.lower()}"'
    assert any(violation in e.lower() for e in session.errors), session.errors


async def test_a_consumer_may_not_read_another_services_consumer(
    chart_nats: ChartNats, sessions: list[Session]
) -> None:
    _, inventory = await _open(chart_nats, sessions, "inventory")
    await ensure_streams(inventory.jetstream(), "inventory")
    await ensure_consumers(inventory.jetstream(), "inventory", ack_wait_s=30)
    session, payment = await _open(chart_nats, sessions, "payment")
    with pytest.raises(nats.errors.TimeoutError):
        await payment.jetstream().consumer_info("ORDERS", "inventory", timeout=1)
    assert any("permissions violation" in e.lower() for e in session.errors)


async def test_a_wrong_password_is_refused(chart_nats: ChartNats) -> None:
    session = Session()
    with pytest.raises(nats.errors.Error):
        await session.connect(chart_nats, "order", password="not-the-password")
