"""Outbox → relay → JetStream → consumer → inbox, on real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
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
from polysaga.persistence.database import asyncpg_dsn
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


def url_of(engine: AsyncEngine) -> str:
    return str(engine.url.render_as_string(False))


def relay_for(engine: AsyncEngine, js: JetStreamContext, **options: Any) -> outbox.OutboxRelay:
    return outbox.OutboxRelay(js, database_url=url_of(engine), **options)


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def relay_listening(engine: AsyncEngine) -> bool:
    """A session of this database holds the relay lock (it takes it after it LISTENs)."""
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = :key AND granted"
                ),
                {"key": outbox.RELAY_LOCK_KEY},
            )
        ).scalar()
    return bool(held)


async def stream_messages(js: JetStreamContext) -> int:
    return int((await js.stream_info("ORDERS")).state.messages)


async def test_event_travels_from_outbox_to_inbox_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    event = placed()
    async with engine.begin() as conn:
        await outbox.append(conn, [event])
    relay = relay_for(engine, js)
    try:
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0  # marked published
    finally:
        await relay.close()

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
    # The "crash": published, but the row is never marked.
    conn = await asyncpg.connect(asyncpg_dsn(url_of(engine)))
    try:
        rows = await outbox.pending(conn, 10)
        assert len(await outbox.publish(js, rows, timeout_s=5)) == 1
    finally:
        await conn.close()
    relay = relay_for(engine, js)
    try:
        assert await relay.publish_pending() == 1  # the row was still pending: published again
    finally:
        await relay.close()
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
    relays = [relay_for(engine, js, batch=3) for _ in range(2)]

    async def run(relay: outbox.OutboxRelay) -> None:
        while await relay.publish_pending():
            await asyncio.sleep(0)

    try:
        await asyncio.gather(run(relays[0]), run(relays[1]))
        # One of them is the database's active relay; the other stood by and sent nothing.
        assert sorted(r.active for r in relays) == [False, True]
        assert await stream_messages(js) == 40
        # The active one goes away (its session ends): the other takes over.
        standby = next(r for r in relays if not r.active)
        await next(r for r in relays if r.active).close()
        async with engine.begin() as conn:
            await outbox.append(conn, [placed()])
        assert await standby.publish_pending() == 1
        assert standby.active
    finally:
        for relay in relays:
            await relay.close()

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
    relay = relay_for(engine, js, poll_interval_s=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    # Its first round done (it listens and holds the relay lock), it sleeps up to 60 s unless
    # notified.
    await until(lambda: relay_listening(engine))
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


async def test_a_round_publishes_every_pending_event_of_an_aggregate_in_order(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    order_id = str(uuid.uuid4())
    events = [placed(order_id), *(cancelled(order_id) for _ in range(2))]
    for e in events:  # three transactions, three pending rows of one aggregate
        async with engine.begin() as conn:
            await outbox.append(conn, [e])
    relay = relay_for(engine, js)
    try:
        assert await relay.publish_pending() == 3  # not only the head of the aggregate's queue
    finally:
        await relay.close()
    sub = await js.pull_subscribe("orders.events.>", stream="ORDERS")
    msgs = await sub.fetch(3, timeout=5)
    assert [m.headers["ce-id"] for m in msgs] == [e.event_id for e in events]


class AcksOnRelease:
    """JetStream whose acknowledgements arrive only when the test says so."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.release = asyncio.Event()
        self.sent = 0

    async def publish_async(self, subject: str, payload: bytes, headers: dict[str, str]) -> Any:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.release.wait()
            ack.set_result(await self._js.publish(subject, payload, headers=headers))

        self._tasks = [*getattr(self, "_tasks", []), asyncio.create_task(later())]
        self.sent += 1
        return ack


async def test_the_relay_holds_no_lock_and_no_transaction_while_nats_acknowledges(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    async with engine.begin() as conn:
        await outbox.append(conn, [placed(), placed()])
    slow = AcksOnRelease(js)
    relay = outbox.OutboxRelay(slow, database_url=url_of(engine))  # type: ignore[arg-type]
    round_ = asyncio.create_task(relay.publish_pending())
    try:

        async def both_sent() -> bool:
            return slow.sent == 2

        await until(both_sent)
        async with engine.begin() as conn:
            # Not locked: a writer could take the rows this very moment.
            locked = await conn.execute(
                text("SELECT id FROM outbox WHERE published_at IS NULL FOR UPDATE NOWAIT")
            )
            assert len(locked.all()) == 2
            open_transactions = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%'"
                    )
                )
            ).scalar()
        assert open_transactions == 0
        slow.release.set()
        assert await asyncio.wait_for(round_, 10) == 2
    finally:
        slow.release.set()
        await relay.close()


def cancelled(order_id: str) -> Envelope[Any]:
    return new_event(order_cancelled(order_id=uuid.UUID(order_id), reason="test"))
