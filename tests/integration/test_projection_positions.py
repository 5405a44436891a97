"""``polysaga projections`` reads where a read model stands from its durable consumers on a
real JetStream: not started before its consumer exists, catching up while it has an old
backlog, live once it has applied everything (or only recent messages wait)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from event_samples import sample
from polysaga.events.envelope import encode_body, new_event, to_headers
from polysaga.messaging.connection import ensure_consumers, ensure_streams
from polysaga_tools import projections
from polysaga_tools.servers import NatsServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context)
    yield context
    await nc.close()


async def publish(js: JetStreamContext, name: str) -> None:
    event = new_event(sample(name))
    await js.publish(event.subject, encode_body(event.data), headers=to_headers(event))


async def sales(js: JetStreamContext) -> projections.StreamPosition:
    found = await projections.positions(js, frozenset({"sales"}))
    (orders,) = found["sales"]
    return orders


async def test_a_read_model_goes_from_not_started_to_catching_up_to_live(
    js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projections, "LIVE_LAG_S", 0.3)
    for _ in range(3):
        await publish(js, "OrderConfirmed")
        await publish(js, "OrderPlaced")  # on the stream, not for sales
    assert (await sales(js)).state == projections.NOT_STARTED

    await ensure_consumers(js, "sales", ack_wait_s=30)

    async def behind() -> projections.StreamPosition:
        while (position := await sales(js)).lag_s <= 0.3:
            await asyncio.sleep(0.05)
        return position

    position = await asyncio.wait_for(behind(), 10)
    assert position.state == projections.CATCHING_UP
    assert (position.position, position.end, position.pending) == (0, 6, 3)
    assert projections.overall([position]) == projections.CATCHING_UP

    sub = await js.pull_subscribe_bind(durable="sales", stream="ORDERS")
    for msg in await sub.fetch(3, timeout=5):
        await msg.ack_sync()
    position = await sales(js)
    assert (position.state, position.pending, position.lag_s) == (projections.LIVE, 0, 0.0)
    assert position.position == 5  # the last OrderConfirmed; the OrderPlaced after it is not its

    monkeypatch.setattr(projections, "LIVE_LAG_S", 5.0)
    await publish(js, "OrderConfirmed")  # new, so well within the live lag
    position = await sales(js)
    assert position.pending == 1 and position.state == projections.LIVE
