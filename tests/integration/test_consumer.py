"""The consumer loop on a real JetStream: poison messages, malformed and unknown-version
messages go to the dead-letter subject while later messages keep flowing."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from event_samples import order_placed
from harness import effect_count, record_effect
from polysaga.events.declaration import ORDERS
from polysaga.events.envelope import (
    MAX_EVENT_BODY_BYTES,
    Envelope,
    encode_body,
    new_event,
    to_headers,
)
from polysaga.events.payloads import OrderPlaced
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer
from polysaga.persistence.database import is_unavailable
from polysaga.persistence.inbox import transactional_runner
from polysaga_tools.servers import NatsServer


class Poison(Exception):
    pass


def placed(tag: str) -> Envelope[OrderPlaced]:
    """A valid OrderPlaced whose user id carries the test's tag."""
    return new_event(order_placed(user_id=tag))


async def publish(
    js: JetStreamContext,
    event: Envelope[Any],
    body: bytes | None = None,
    *,
    subject: str | None = None,
    **headers: str,
) -> None:
    """Publish ``event`` (or other bytes, subject or headers under its attributes)."""
    await js.publish(
        subject or event.subject,
        encode_body(event.data) if body is None else body,
        headers=to_headers(event) | {k.replace("_", "-"): v for k, v in headers.items()},
    )


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

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
        attempts[event.data.user_id] = attempts.get(event.data.user_id, 0) + 1
        if event.data.user_id == "poison":
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

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await record_effect(event, conn)

    await js.publish("orders.events.OrderPlaced", b"not json at all", headers={"x": "y"})
    await publish(js, placed("bad-body"), body=b"[1, 2")
    await publish(js, placed("future"), ce_type="io.polysaga.OrderPlaced.v9")
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

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
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

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
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


# --- issue 14, classes 6 and 8: whatever the bytes, dead-lettered on the first delivery ---

ORDERS_PLACED = "orders.events.OrderPlaced"


def _body(**changes: Any) -> bytes:
    """A valid OrderPlaced body with fields replaced (``None`` removes one)."""
    doc = msgspec.to_builtins(order_placed())
    for field, value in changes.items():
        if value is None:
            del doc[field]
        else:
            doc[field] = value
    return msgspec.json.encode(doc)


def _deep(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


# Each class: (extra headers, body, subject) variants published under a fresh valid event's
# headers. A body of None is the event's own (valid) body.
Variant = tuple[dict[str, str], bytes | None, str | None]
POISON_CLASSES: dict[str, list[Variant]] = {
    "invalid_utf8": [
        ({}, b'{"order_id": "\xff\xfe", "user_id": "u"}', None),
        ({}, _body(user_id="PLACEHOLDER").replace(b"PLACEHOLDER", b"\xc0\xaf"), None),
        ({}, _body(total="PLACEHOLDER").replace(b"PLACEHOLDER", b"\xed\xa0\x80"), None),
        ({}, b"\xff\xfe\x00\x00garbage", None),
    ],
    "deep_nesting": [
        ({}, _deep(10_000), None),
        ({}, _deep(10_000, b'{"a":', b"}"), None),
        ({}, _body(items="PLACEHOLDER").replace(b'"PLACEHOLDER"', _deep(10_000)), None),
    ],
    "missing_fields": [
        ({}, _body(order_id=None), None),
        ({}, _body(items=None, total=None), None),
        ({}, b"{}", None),
    ],
    "wrong_types": [
        ({}, _body(items="x", total=5), None),
        ({}, _body(user_id=7), None),
        ({}, _body(items=[{"sku": "APPLE", "quantity": "2", "unit_price": "1.25"}]), None),
        ({}, _body(placed_at=1700000000), None),
    ],
    "unknown_fields": [
        ({}, _body(discount="1.00"), None),
        ({}, _body(items=[{"sku": "A", "quantity": 1, "unit_price": "1.00", "gift": True}]), None),
    ],
    "ce_id_not_a_uuid": [
        ({"ce-id": "not-a-uuid"}, None, None),
        ({"ce-id": ""}, None, None),
        ({"ce-id": "0af7651916cd43dd8448eb211c80319c"}, None, None),
        ({"ce-id": "{0af76519-16cd-43dd-8448-eb211c80319c}"}, None, None),
    ],
    "bad_amounts": [
        ({}, _body(total="-5.00"), None),
        ({}, _body(total="1000000000000.00"), None),
        ({}, _body(total="1e400"), None),
        ({}, _body(total="NaN"), None),
        ({}, _body(items=[{"sku": "A", "quantity": 2**40, "unit_price": "1.00"}]), None),
    ],
    "ce_type_not_the_subject_s": [
        ({"ce-type": "io.polysaga.OrderConfirmed.v1"}, None, None),
        ({"ce-type": "io.polysaga.PaymentProcessed.v2"}, None, None),
        ({}, None, "orders.events.OrderCancelled"),
    ],
    "bad_ce_time": [
        ({"ce-time": "yesterday"}, None, None),
        ({"ce-time": "2025-01-01T00:00:00"}, None, None),
        ({"ce-time": "0001-01-01T00:00:00+14:00"}, None, None),
    ],
    "ce_subject_not_the_body_s": [
        ({"ce-subject": "someone-else"}, None, None),
    ],
}


@pytest.mark.parametrize("poison_class", sorted(POISON_CLASSES))
async def test_each_class_of_poison_is_dead_lettered_on_its_first_delivery(
    engine: AsyncEngine, js: JetStreamContext, poison_class: str
) -> None:
    """Good and poison messages interleaved, a good one last: every poison is a dead letter
    after one delivery with its reason, every good one is handled, the ack floor reaches the
    stream's end and nothing is redelivered (the loop never crashed or stalled)."""
    variants = POISON_CLASSES[poison_class]
    handled: list[str] = []

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
        handled.append(event.data.user_id)
        await record_effect(event, conn)

    poison_ids = []
    for i, (headers, body, subject) in enumerate(variants):
        await publish(js, placed(f"good-{i}"))
        poison = placed(f"poison-{i}")
        poison_ids.append(headers.get("ce-id", poison.event_id))
        await js.publish(
            subject or ORDERS_PLACED,
            encode_body(poison.data) if body is None else body,
            headers=to_headers(poison) | headers,
        )
    await publish(js, placed("last"))
    goods = len(variants) + 1

    async def done() -> bool:
        return await effect_count(engine) == goods and len(await dead_letters(js)) == len(variants)

    await run_consumer_until(consumer(engine, js, handler), done)

    assert sorted(handled) == sorted([f"good-{i}" for i in range(len(variants))] + ["last"])
    letters = await dead_letters(js)
    assert {letter["polysaga-dead-letter-reason"] for letter in letters} == {"malformed"}
    assert {letter["polysaga-deliveries"] for letter in letters} == {"1"}
    assert sorted(letter.get("ce-id", "") for letter in letters) == sorted(poison_ids)
    assert all(letter["polysaga-dead-letter-detail"] for letter in letters)
    info = await js.consumer_info("ORDERS", "inventory")
    stream = await js.stream_info("ORDERS")
    assert info.num_pending == 0 and info.num_ack_pending == 0
    assert info.num_redelivered == 0
    assert info.ack_floor.stream_seq == stream.state.last_seq


async def publish_raw(port: int, subject: str, headers: bytes, body: bytes) -> None:
    """Bytes no client library would send, as one HPUB on a plain socket."""
    block = b"NATS/1.0\r\n" + headers + b"\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"headers":true}\r\n')
        size = len(block) + len(body)
        writer.write(
            b"HPUB %s %d %d\r\n%s%s\r\nPING\r\n" % (subject.encode(), len(block), size, block, body)
        )
        await writer.drain()
        assert (await reader.readline()).startswith(b"PONG")
    finally:
        writer.close()


@pytest.mark.parametrize("attribute", ["ce-id", "ce-source", "ce-subject", "ce-type", "ce-time"])
async def test_invalid_utf8_in_a_header_is_dead_lettered_too(
    engine: AsyncEngine, js: JetStreamContext, nats_server: NatsServer, attribute: str
) -> None:
    """nats-py reads a header value that is not UTF-8 with U+FFFD in place of the bad bytes;
    no attribute with one in it is valid, so the message is a dead letter at once."""

    async def handler(event: Envelope[OrderPlaced], conn: AsyncConnection) -> None:
        await record_effect(event, conn)

    poison = placed("poison")
    headers = b"".join(
        f"{k}: {v}\r\n".encode() if k != attribute else f"{k}: {v}".encode() + b"\xff\xfe\r\n"
        for k, v in to_headers(poison).items()
    )
    await publish_raw(nats_server.port, ORDERS_PLACED, headers, encode_body(poison.data))
    await publish(js, placed("after"))

    async def done() -> bool:
        return await effect_count(engine) == 1 and len(await dead_letters(js)) == 1

    await run_consumer_until(consumer(engine, js, handler), done)
    (letter,) = await dead_letters(js)
    assert letter["polysaga-dead-letter-reason"] == "malformed"
    assert letter["polysaga-deliveries"] == "1"
    info = await js.consumer_info("ORDERS", "inventory")
    assert info.num_pending == 0 and info.num_ack_pending == 0
