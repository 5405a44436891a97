"""The consumer's batches on a real JetStream and PostgreSQL: a fetched batch commits in one
transaction with its inbox rows, a failing batch is handled again one message at a time, a
failing message holds back the later messages of its aggregate in the batch, and an error
while settling one message (ack, nak, dead-letter publish) stays with that message."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from event_samples import sample
from harness import effect_count, record_effect
from polysaga.events.declaration import ORDERS
from polysaga.events.envelope import Envelope, encode_body, new_event, to_headers
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer, EventHandler
from polysaga.persistence.database import is_unavailable
from polysaga.persistence.inbox import transactional_batch_runner, transactional_runner

POLICY = ConsumerPolicy(
    max_deliveries=3, backoff_s=0.2, backoff_max_s=0.2, fetch_batch=16, fetch_timeout_s=0.2
)


def event(name: str, order_id: str, tag: str) -> Envelope[Any]:
    """An order event told apart by its tag (carried as the user id)."""
    return new_event(sample(name, order_id=uuid.UUID(order_id), user_id=tag))


async def publish(js: JetStreamContext, *events: Envelope[Any]) -> None:
    for e in events:
        await js.publish(e.subject, encode_body(e.data), headers=to_headers(e))


async def fetch(js: JetStreamContext, count: int) -> list[Msg]:
    sub = await js.pull_subscribe_bind(durable="inventory", stream="ORDERS")
    msgs: list[Msg] = []
    while len(msgs) < count:
        msgs.extend(await sub.fetch(count - len(msgs), timeout=5))
    return msgs


def consumer(
    engine: AsyncEngine, js: JetStreamContext, handler: EventHandler, *, batched: bool = True
) -> EventConsumer:
    return EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={"OrderPlaced": handler, "OrderCancelled": handler},
        runner=transactional_runner(engine),
        batch_runner=transactional_batch_runner(engine) if batched else None,
        js=js,
        policy=POLICY,
        store_unavailable=is_unavailable,
    )


async def commits(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT xact_commit FROM pg_stat_database"
                        " WHERE datname = current_database()"
                    )
                )
            ).scalar_one()
        )


async def settled(js: JetStreamContext) -> bool:
    info = await js.consumer_info("ORDERS", "inventory")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_a_batch_commits_once_with_all_its_inbox_rows_then_acks(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    events = [event("OrderPlaced", str(uuid.uuid4()), f"e{i}") for i in range(10)]
    await publish(js, *events)
    msgs = await fetch(js, 10)
    transactions: list[int] = []

    async def handler(e: Envelope[Any], conn: AsyncConnection) -> None:
        backend = (await conn.execute(text("SELECT txid_current()"))).scalar_one()
        transactions.append(int(backend))
        await record_effect(e, conn)

    await consumer(engine, js, handler).process_batch(msgs)
    assert len(set(transactions)) == 1, "every handler of the batch ran in one transaction"
    assert await effect_count(engine) == 10
    async with engine.connect() as conn:
        inbox = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
    assert inbox == 10
    assert all(m.is_acked for m in msgs)
    assert await settled(js)

    # The same events again (new message ids): the inbox absorbs them in the batch too.
    for e in events:
        headers = {k: v for k, v in to_headers(e).items() if k != "Nats-Msg-Id"}
        await js.publish(e.subject, encode_body(e.data), headers=headers)
    await consumer(engine, js, handler).process_batch(await fetch(js, 10))
    assert await effect_count(engine) == 10


async def test_a_failing_batch_is_handled_one_message_at_a_time(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    good = [event("OrderPlaced", str(uuid.uuid4()), f"good-{i}") for i in range(4)]
    poison = event("OrderPlaced", str(uuid.uuid4()), "poison")
    await publish(js, good[0], good[1], poison, good[2], good[3])
    calls: dict[str, int] = {}

    async def handler(e: Envelope[Any], conn: AsyncConnection) -> None:
        calls[e.data.user_id] = calls.get(e.data.user_id, 0) + 1
        if e.data.user_id == "poison":
            raise RuntimeError("never works")
        await record_effect(e, conn)

    await consumer(engine, js, handler).process_batch(await fetch(js, 5))
    # The batch rolled back, then every good message committed on its own; the poison is
    # nak'ed for a later try, not dead-lettered yet.
    assert await effect_count(engine) == 4
    assert calls["poison"] == 2  # once in the batch, once alone
    assert all(calls[f"good-{i}"] in (1, 2) for i in range(4))
    info = await js.consumer_info("ORDERS", "inventory")
    assert info.num_ack_pending == 1


async def test_a_failed_message_holds_back_the_later_ones_of_its_aggregate(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    order, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = event("OrderPlaced", order, "first")
    later = event("OrderCancelled", order, "later")
    unrelated = event("OrderPlaced", other, "unrelated")
    await publish(js, first, later, unrelated)
    handled: list[str] = []
    fail_first = True

    async def handler(e: Envelope[Any], conn: AsyncConnection) -> None:
        if e.data.user_id == "first" and fail_first:
            raise RuntimeError("not yet")
        await record_effect(e, conn)
        handled.append(e.data.user_id)

    c = consumer(engine, js, handler, batched=False)
    await c.process_batch(await fetch(js, 3))
    # The unrelated aggregate went on; the later event of the failed one did not overtake it.
    assert handled == ["unrelated"]

    fail_first = False
    redelivered = await fetch(js, 2)  # both come back after the backoff
    await c.process_batch(sorted(redelivered, key=lambda m: m.metadata.sequence.stream))
    assert handled == ["unrelated", "first", "later"]
    assert await settled(js)


class FailingAck:
    """A message whose ack fails the way a dropped NATS connection makes it fail."""

    def __init__(self, msg: Msg) -> None:
        self._msg = msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._msg, name)

    async def ack(self) -> None:
        raise ConnectionError("nats: connection closed")


async def test_an_error_settling_one_message_stays_with_it_and_siblings_finish(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    quick, slow = (
        event("OrderPlaced", str(uuid.uuid4()), "quick"),
        event("OrderPlaced", str(uuid.uuid4()), "slow"),
    )
    await publish(js, quick, slow)
    first, second = await fetch(js, 2)
    slow_done = asyncio.Event()

    async def handler(e: Envelope[Any], conn: AsyncConnection) -> None:
        if e.data.user_id == "slow":
            await asyncio.sleep(0.3)
            slow_done.set()
        await record_effect(e, conn)

    # One message at a time, so the two aggregates run side by side.
    c = consumer(engine, js, handler, batched=False)
    await c.process_batch([FailingAck(first), second])  # type: ignore[list-item]
    # No exception escaped, and the batch returned only once its sibling had finished.
    assert slow_done.is_set()
    assert second.is_acked
    assert await effect_count(engine) == 2


async def test_a_failing_dead_letter_publish_leaves_the_message_to_redelivery(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    await js.publish("orders.events.OrderPlaced", b"not json", headers={"x": "y"})
    (msg,) = await fetch(js, 1)

    class NoDeadLetters:
        def __getattr__(self, name: str) -> Any:
            return getattr(js, name)

        async def publish(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("nats: connection closed")

    c = EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={},
        runner=transactional_runner(engine),
        js=NoDeadLetters(),  # type: ignore[arg-type]
        policy=POLICY,
    )
    await c.process_batch([msg])  # must not raise
    assert not msg.is_acked  # neither terminated nor acked: JetStream delivers it again


async def test_a_message_arriving_while_the_consumer_waits_is_handled_at_once(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    handled_at: list[float] = []

    async def handler(e: Envelope[Any], conn: AsyncConnection) -> None:
        await record_effect(e, conn)
        handled_at.append(asyncio.get_running_loop().time())

    # A long fetch timeout: a fetch that waited to fill its batch would hold the message for
    # the whole of it (JetStream ends a pull with no_wait and expires once it delivered).
    slow_fetch = ConsumerPolicy(fetch_batch=64, fetch_timeout_s=5.0, backoff_s=0.2)
    c = EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={"OrderPlaced": handler},
        runner=transactional_runner(engine),
        batch_runner=transactional_batch_runner(engine),
        js=js,
        policy=slow_fetch,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:

        async def waiting_for_messages() -> bool:
            info = await js.consumer_info("ORDERS", "inventory")
            return bool(info.num_waiting >= 1)

        deadline = asyncio.get_running_loop().time() + 10
        while not await waiting_for_messages():
            assert asyncio.get_running_loop().time() < deadline, "the consumer never pulled"
            await asyncio.sleep(0.02)
        sent_at = asyncio.get_running_loop().time()
        await publish(js, event("OrderPlaced", str(uuid.uuid4()), "late"))
        while not handled_at:
            assert asyncio.get_running_loop().time() < sent_at + 10, "never handled"
            await asyncio.sleep(0.01)
        assert handled_at[0] - sent_at < 1.0, f"held for {handled_at[0] - sent_at:.2f} s"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
