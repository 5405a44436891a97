"""The consumer loop on a real JetStream: poison messages, malformed and unknown-version
messages go to the dead-letter subject while later messages keep flowing."""

from __future__ import annotations

import asyncio
import uuid

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from harness import effect_count, record_effect
from polysaga.events.declaration import ORDERS
from polysaga.events.envelope import MAX_EVENT_BODY_BYTES, Envelope, new_event, to_headers
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer
from polysaga.persistence.database import is_unavailable
from polysaga.persistence.inbox import transactional_runner


class Poison(Exception):
    pass


def placed(tag: str) -> Envelope:
    order_id = str(uuid.uuid4())
    return new_event("OrderPlaced", order_id, {"order_id": order_id, "tag": tag})


async def publish(js: JetStreamContext, event: Envelope, body: bytes | None = None) -> None:
    payload = (
        body
        if body is not None
        else b'{"order_id": "%s", "tag": "%s"}'
        % (event.aggregate_id.encode(), event.data["tag"].encode())
    )
    await js.publish(event.subject, payload, headers=to_headers(event))


async def dead_letters(js: JetStreamContext) -> list[dict[str, str]]:
    info = await js.stream_info("DEADLETTER")
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe("deadletter.>", stream="DEADLETTER")
    msgs = await sub.fetch(int(info.state.messages), timeout=2)
    await sub.unsubscribe()
    return [dict(m.headers or {}) | {"subject": m.subject} for m in msgs]


async def run_consumer_until(c: EventConsumer, condition: object, timeout_s: float = 15) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await condition():  # type: ignore[operator]
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def consumer(engine: AsyncEngine, js: JetStreamContext, handler: object) -> EventConsumer:
    return EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={"OrderPlaced": handler},  # type: ignore[dict-item]
        runner=transactional_runner(engine),
        js=js,
        policy=ConsumerPolicy(
            max_deliveries=3, backoff_s=0.05, backoff_max_s=0.2, fetch_batch=8, fetch_timeout_s=0.2
        ),
        store_unavailable=is_unavailable,
    )


async def test_poison_message_is_dead_lettered_after_n_tries_and_later_ones_flow(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    attempts: dict[str, int] = {}

    async def handler(event: Envelope, conn: AsyncConnection) -> None:
        attempts[event.data["tag"]] = attempts.get(event.data["tag"], 0) + 1
        if event.data["tag"] == "poison":
            raise Poison("this one never works")
        await record_effect(event, conn)

    await publish(js, placed("poison"))
    for i in range(5):
        await publish(js, placed(f"good-{i}"))

    async def done() -> bool:
        return await effect_count(engine) == 5 and len(await dead_letters(js)) == 1

    await run_consumer_until(consumer(engine, js, handler), done)
    assert attempts["poison"] == 3
    (letter,) = await dead_letters(js)
    assert letter["subject"] == "deadletter.inventory.orders.events.OrderPlaced"
    assert letter["polysaga-dead-letter-reason"] == "exhausted"
    assert letter["polysaga-deliveries"] == "3"
    assert "Poison" in letter["polysaga-dead-letter-detail"]
    # The poison is terminated: the consumer has nothing left pending.
    info = await js.consumer_info("ORDERS", "inventory")
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_malformed_and_unknown_version_messages_are_dead_lettered_at_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    calls = 0

    async def handler(event: Envelope, conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await record_effect(event, conn)

    await js.publish("orders.events.OrderPlaced", b"not json at all", headers={"x": "y"})
    bad_body = placed("bad-body")
    await publish(js, bad_body, body=b"[1, 2")
    future = placed("future")
    headers = to_headers(future) | {"ce-type": "io.polysaga.OrderPlaced.v9"}
    await js.publish(future.subject, b'{"order_id": "x"}', headers=headers)
    await publish(js, placed("fine"))

    async def done() -> bool:
        return await effect_count(engine) == 1 and len(await dead_letters(js)) == 3

    await run_consumer_until(consumer(engine, js, handler), done)
    reasons = sorted(letter["polysaga-dead-letter-reason"] for letter in await dead_letters(js))
    assert reasons == ["malformed", "malformed", "unsupported_version"]
    assert calls == 1


async def test_oversized_event_is_dead_lettered_and_the_consumer_goes_on(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    calls = 0

    async def handler(event: Envelope, conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await record_effect(event, conn)

    huge = placed("huge")
    # Well-formed JSON with valid headers, only too big for any event of ours.
    filler = b"x" * (MAX_EVENT_BODY_BYTES + 1)
    await publish(js, huge, body=b'{"order_id": "%s", "pad": "%s"}' % (b"x", filler))
    after = [placed(f"after-{i}") for i in range(3)]
    for event in after:
        await publish(js, event)

    async def done() -> bool:
        return await effect_count(engine) == 3 and len(await dead_letters(js)) == 1

    await run_consumer_until(consumer(engine, js, handler), done)
    (letter,) = await dead_letters(js)
    assert letter["polysaga-dead-letter-reason"] == "malformed"
    assert "exceeds" in letter["polysaga-dead-letter-detail"]
    assert letter["ce-id"] == huge.event_id
    assert calls == 3
    info = await js.consumer_info("ORDERS", "inventory")
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_an_outage_of_the_store_spends_no_delivery_and_dead_letters_nothing(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    """Found by polysaga chaos: a PostgreSQL restart used to burn a message's deliveries and
    dead-letter good events. The server ends the handler's session five times here (more
    than max_deliveries); the event must still be handled once, on its first delivery."""
    outages = 0

    async def handler(event: Envelope, conn: AsyncConnection) -> None:
        nonlocal outages
        if outages < 5:
            outages += 1
            await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await record_effect(event, conn)

    await publish(js, placed("during-an-outage"))

    async def done() -> bool:
        return await effect_count(engine) == 1

    await run_consumer_until(consumer(engine, js, handler), done)
    assert outages == 5
    assert await dead_letters(js) == []
    info = await js.consumer_info("ORDERS", "inventory")
    assert info.num_pending == 0 and info.num_ack_pending == 0
    assert info.num_redelivered == 0  # retried under its first delivery
