"""Outbox → relay → JetStream → consumer → inbox, on real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from event_samples import order_cancelled, order_placed
from harness import effect_count, record_effect
from polysaga.events.declaration import ORDERS
from polysaga.events.envelope import Envelope, encode_body, new_event
from polysaga.events.payloads import OrderPlaced
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer
from polysaga.persistence import outbox
from polysaga.persistence.inbox import transactional_runner


def placed(order_id: str | None = None) -> Envelope[OrderPlaced]:
    return new_event(order_placed(order_id=uuid.UUID(order_id) if order_id else uuid.uuid4()))


def consumer(engine: AsyncEngine, js: JetStreamContext, **policy: float) -> EventConsumer:
    return EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={"OrderPlaced": record_effect, "OrderCancelled": record_effect},
        runner=transactional_runner(engine),
        js=js,
        policy=ConsumerPolicy(**policy),  # type: ignore[arg-type]
    )


async def drain(
    c: EventConsumer, js: JetStreamContext, expected: int, timeout_s: float = 10
) -> None:
    """Fetch and process until `expected` messages were processed."""
    sub = await js.pull_subscribe_bind(durable="inventory", stream="ORDERS")
    seen = 0
    deadline = asyncio.get_running_loop().time() + timeout_s
    while seen < expected:
        assert asyncio.get_running_loop().time() < deadline, f"only {seen}/{expected} messages"
        try:
            msgs = await sub.fetch(expected - seen, timeout=0.5)
        except TimeoutError:
            continue
        await c.process_batch(msgs)
        seen += len(msgs)
    await sub.unsubscribe()


async def stream_messages(js: JetStreamContext) -> int:
    return int((await js.stream_info("ORDERS")).state.messages)


async def test_event_travels_from_outbox_to_inbox_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event = placed()
    async with engine.begin() as conn:
        await outbox.append(conn, [event])
    relay = outbox.OutboxRelay(engine, js, database_url=str(engine.url.render_as_string(False)))
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0  # marked published

    await drain(consumer(engine, js), js, expected=1)
    assert await effect_count(engine) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT consumer, event_type FROM inbox"))).one()
    assert (row.consumer, row.event_type) == ("inventory", "OrderPlaced")


async def test_relay_killed_between_publish_and_mark_republishes_and_effect_is_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event = placed()
    async with engine.begin() as conn:
        await outbox.append(conn, [event])
    # The "crash": published, but the transaction that marks the row never commits.
    async with engine.connect() as conn:
        tx = await conn.begin()
        rows = await outbox.claim(conn, 10)
        assert len(await outbox.publish(js, rows, timeout_s=5)) == 1
        await tx.rollback()
    relay = outbox.OutboxRelay(engine, js, database_url=str(engine.url.render_as_string(False)))
    assert await relay.publish_pending() == 1  # the row was still pending: published again
    # Within the duplicate window the server dropped the second copy (Nats-Msg-Id).
    assert await stream_messages(js) == 1

    # Past the window the server would keep both: force that, and the inbox absorbs it.
    headers = {k: v for k, v in _headers(event).items() if k != "Nats-Msg-Id"}
    await js.publish(event.subject, b'{"order_id": "x"}', headers=headers)
    assert await stream_messages(js) == 2
    await drain(consumer(engine, js), js, expected=2)
    assert await effect_count(engine) == 1


def _headers(event: Envelope[OrderPlaced]) -> dict[str, str]:
    from polysaga.events.envelope import to_headers

    return to_headers(event)


async def test_redelivered_event_changes_nothing(engine: AsyncEngine, js: JetStreamContext) -> None:
    event = placed()
    body = encode_body(event.data)
    for _ in range(3):  # three distinct messages carrying the same event id
        headers = {k: v for k, v in _headers(event).items() if k != "Nats-Msg-Id"}
        await js.publish(event.subject, body, headers=headers)
    await drain(consumer(engine, js), js, expected=3)
    assert await effect_count(engine) == 1


async def test_one_aggregates_events_leave_in_order_with_two_relays(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    aggregates = [str(uuid.uuid4()) for _ in range(5)]
    written: dict[str, list[str]] = {a: [] for a in aggregates}
    for step in range(8):
        async with engine.begin() as conn:
            batch = []
            for aggregate in aggregates:
                order_id = uuid.UUID(aggregate)
                e = new_event(
                    order_placed(order_id=order_id)
                    if step == 0
                    else order_cancelled(order_id=order_id, reason=f"step {step}")
                )
                written[aggregate].append(e.event_id)
                batch.append(e)
            await outbox.append(conn, batch)
    url = str(engine.url.render_as_string(False))
    relays = [outbox.OutboxRelay(engine, js, database_url=url, batch=3) for _ in range(2)]

    async def run(relay: outbox.OutboxRelay) -> None:
        while await relay.publish_pending():
            await asyncio.sleep(0)

    await asyncio.gather(run(relays[0]), run(relays[1]))
    await asyncio.gather(run(relays[0]), run(relays[1]))  # anything a race left behind
    assert await stream_messages(js) == 40

    sub = await js.pull_subscribe("orders.events.>", stream="ORDERS")
    received: dict[str, list[str]] = {a: [] for a in aggregates}
    msgs = await sub.fetch(40, timeout=5)
    for msg in msgs:
        received[msg.headers["ce-subject"]].append(msg.headers["ce-id"])
        await msg.ack()
    assert received == written


async def test_relay_wakes_on_notify_without_waiting_for_the_poll(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    relay = outbox.OutboxRelay(
        engine, js, database_url=str(engine.url.render_as_string(False)), poll_interval_s=60
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.5)  # first round done; now it sleeps up to 60 s unless notified
    async with engine.begin() as conn:
        await outbox.append(conn, [placed()])
    try:
        for _ in range(100):
            if await stream_messages(js) == 1:
                break
            await asyncio.sleep(0.05)
        assert await stream_messages(js) == 1, "NOTIFY did not wake the relay"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
