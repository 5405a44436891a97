"""One contract for the outbox and the inbox, run against both implementations: the
PostgreSQL outbox table + transactional inbox, and the MongoDB document-embedded outbox +
inbox with idempotent effects (on FerretDB)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import asyncpg
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text

from event_samples import order_cancelled, order_placed
from polysaga.events.envelope import Envelope, new_event
from polysaga.messaging.consumer import HandlerRunner
from polysaga.mongo import inbox as mongo_inbox
from polysaga.mongo import outbox as mongo_outbox
from polysaga.mongo.client import connect as mongo_connect
from polysaga.persistence import inbox as pg_inbox
from polysaga.persistence import outbox as pg_outbox
from polysaga.persistence.database import Migration, asyncpg_dsn, create_engine, migrate

AGGREGATE = "3f2c1b0a-9e8d-4c7b-a6f5-e4d3c2b1a098"


class Backend(Protocol):
    async def write(
        self, aggregate_id: str, events: Sequence[Envelope[Any]], fail: bool = False
    ) -> None:
        """Change the aggregate's state and stage its events atomically; `fail` aborts."""

    async def relay(self, js: JetStreamContext) -> int: ...
    async def pending(self) -> int: ...
    def runner(self) -> HandlerRunner: ...


class Aborted(Exception):
    pass


class PostgresBackend:
    STATE = Migration("contract", 1, ("CREATE TABLE state (id text PRIMARY KEY, n integer)",))

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=4)

    async def open(self) -> None:
        await migrate(self.engine, [*pg_outbox.MIGRATIONS, *pg_inbox.MIGRATIONS, self.STATE])

    async def write(
        self, aggregate_id: str, events: Sequence[Envelope[Any]], fail: bool = False
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO state VALUES (:id, 1) ON CONFLICT (id) DO UPDATE"
                    " SET n = state.n + 1"
                ),
                {"id": aggregate_id},
            )
            await pg_outbox.append(conn, events)
            if fail:
                raise Aborted

    async def relay(self, js: JetStreamContext) -> int:
        relay = pg_outbox.OutboxRelay(js, database_url=self.url)
        try:
            return await relay.publish_pending()
        finally:
            await relay.close()

    async def pending(self) -> int:
        relay_conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            return (await pg_outbox.backlog(relay_conn)).pending
        finally:
            await relay_conn.close()

    def runner(self) -> HandlerRunner:
        return pg_inbox.transactional_runner(self.engine)


class MongoBackend:
    def __init__(self, url: str) -> None:
        self.client, self.db = mongo_connect(url)
        self.docs = self.db["aggregates"]

    async def open(self) -> None:
        await mongo_outbox.ensure_indexes(self.docs)

    async def write(
        self, aggregate_id: str, events: Sequence[Envelope[Any]], fail: bool = False
    ) -> None:
        doc = await self.docs.find_one({"_id": aggregate_id})
        n = int(doc["n"]) if doc else 0
        if fail:
            raise Aborted  # nothing written: the single update below never happens
        # State and events in one single-document update, guarded on the version read.
        update = mongo_outbox.merge_updates(
            {"$inc": {"n": 1}}, mongo_outbox.staged(events, first_seq=n * 100)
        )
        guard = {"_id": aggregate_id, "n": n} if doc else {"_id": aggregate_id}
        await self.docs.update_one(guard, update, upsert=True)

    async def relay(self, js: JetStreamContext) -> int:
        return await mongo_outbox.publish_pending(self.docs, js)

    async def pending(self) -> int:
        return await mongo_outbox.backlog(self.docs)

    def runner(self) -> HandlerRunner:
        return mongo_inbox.inbox_runner(self.db)


@pytest.fixture(params=["postgres", "mongo"])
async def backend(
    request: pytest.FixtureRequest, database_url: str, mongo_url: str
) -> AsyncIterator[Any]:
    chosen: PostgresBackend | MongoBackend = (
        PostgresBackend(database_url) if request.param == "postgres" else MongoBackend(mongo_url)
    )
    await chosen.open()
    yield chosen
    if isinstance(chosen, PostgresBackend):
        await chosen.engine.dispose()
    else:
        await chosen.client.close()


def placed(aggregate_id: str, step: int) -> Envelope[Any]:
    """The order's first event, then cancellations (each with its step in the reason)."""
    order_id = uuid.UUID(aggregate_id)
    if step == 0:
        return new_event(order_placed(order_id=order_id))
    return new_event(order_cancelled(order_id=order_id, reason=f"step {step}"))


async def stream_events(js: JetStreamContext) -> list[tuple[str, str]]:
    info = await js.stream_info("ORDERS")
    if not info.state.messages:
        return []
    sub = await js.pull_subscribe("orders.events.>", stream="ORDERS")
    msgs = await sub.fetch(int(info.state.messages), timeout=2)
    await sub.unsubscribe()
    return [(m.headers["ce-subject"], m.headers["ce-id"]) for m in msgs]  # type: ignore[index]


async def test_staged_events_are_published_once_in_aggregate_order(
    backend: Backend, js: JetStreamContext
) -> None:
    written: list[tuple[str, str]] = []
    for aggregate in (str(uuid.uuid4()) for _ in range(3)):
        for step in range(3):
            events = [placed(aggregate, step)]
            await backend.write(aggregate, events)
            written += [(aggregate, e.event_id) for e in events]
    assert await backend.pending() == 9
    published = 0
    for _ in range(10):  # round by round until nothing is left
        if not (round_published := await backend.relay(js)):
            break
        published += round_published
    assert published == 9
    assert await backend.pending() == 0
    received = await stream_events(js)
    for aggregate in {a for a, _ in written}:
        assert [e for a, e in received if a == aggregate] == [
            e for a, e in written if a == aggregate
        ]


async def test_an_aborted_change_stages_no_event(backend: Backend, js: JetStreamContext) -> None:
    with pytest.raises(Aborted):
        await backend.write(AGGREGATE, [placed(AGGREGATE, 0)], fail=True)
    assert await backend.pending() == 0
    assert await backend.relay(js) == 0


async def test_the_inbox_runs_a_handler_once_per_event(backend: Backend) -> None:
    calls: list[str] = []

    async def handler(event: Envelope[Any], _: Any) -> None:
        calls.append(event.event_id)

    event = placed(AGGREGATE, 0)
    run = backend.runner()
    assert await run("contract", event, handler) is True
    assert await run("contract", event, handler) is False
    assert await run("another-consumer", event, handler) is True
    assert calls == [event.event_id, event.event_id]


async def test_a_failed_handler_records_nothing_and_runs_again(backend: Backend) -> None:
    attempts = 0

    async def flaky(event: Envelope[Any], _: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first try fails")

    event = placed(AGGREGATE, 0)
    run = backend.runner()
    with pytest.raises(RuntimeError):
        await run("contract", event, flaky)
    assert await run("contract", event, flaky) is True
    assert attempts == 2
