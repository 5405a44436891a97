"""The order service's event store on real PostgreSQL: optimistic concurrency, conflicts
retried by the consumer, snapshots, and state as of a past time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from event_samples import payment_processed
from order import application
from order.adapters import MIGRATIONS
from order.adapters import PostgresOrderStore as OrderStore
from order.domain import OrderStatus
from order.ports import ConcurrencyConflictError
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import PaymentProcessed
from polysaga.persistence.database import migrate
from polysaga.persistence.inbox import transactional_runner
from polysaga.persistence.unit_of_work import PostgresUnitOfWork


@pytest.fixture
async def order_engine(engine: AsyncEngine) -> AsyncEngine:
    await migrate(engine, MIGRATIONS)
    async with engine.begin() as conn:
        await OrderStore(conn).set_price("sku-1", Decimal("2.50"))
    return engine


async def place(engine: AsyncEngine, snapshot_every: int = 10) -> str:
    placed = await application.place_order(
        PostgresUnitOfWork(engine, lambda conn: OrderStore(conn, snapshot_every)),
        application.PlaceOrder("u1", (("sku-1", 2),)),
        now=datetime.now(UTC),
        deadline_s=30,
    )
    return placed.order_id


async def test_stale_append_is_refused(order_engine: AsyncEngine) -> None:
    order_id = await place(order_engine)
    async with order_engine.connect() as conn:
        stale = await OrderStore(conn).load(order_id)
    assert stale is not None
    async with order_engine.begin() as conn:
        await OrderStore(conn).append(stale, stale.confirm(datetime.now(UTC)))
    with pytest.raises(ConcurrencyConflictError):
        async with order_engine.begin() as conn:
            await OrderStore(conn).append(stale, stale.cancel("late", datetime.now(UTC)))
    async with order_engine.connect() as conn:
        order = await OrderStore(conn).load(order_id)
    assert order is not None and order.status is OrderStatus.CONFIRMED and order.version == 2


async def test_conflict_on_the_order_stream_is_retried_on_fresh_state(
    order_engine: AsyncEngine,
) -> None:
    """A payment and a deadline cancel race for one order. The cancel commits first; the
    payment's append then conflicts, the consumer retries the whole transaction, and on the
    reloaded (cancelled) order the payment reaction appends nothing."""
    run_once = transactional_runner(order_engine)
    order_id = await place(order_engine)
    payment = new_event(payment_processed(order_id=uuid.UUID(order_id), amount="5.00"))
    loaded, cancelled = asyncio.Event(), asyncio.Event()
    attempts = 0

    async def pay(event: Envelope[PaymentProcessed], conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        store = OrderStore(conn)
        order = await store.load(str(event.data.order_id))
        if attempts == 1:
            loaded.set()
            await cancelled.wait()  # the stale read: the cancel commits meanwhile
        if order is not None and order.status is OrderStatus.PENDING:
            await store.append(order, order.confirm(datetime.now(UTC)))

    async def cancel() -> None:
        await loaded.wait()
        async with order_engine.begin() as conn:
            assert await application.cancel_if_pending(
                OrderStore(conn), order_id, "deadline_exceeded", datetime.now(UTC)
            )
        cancelled.set()

    handled, _ = await asyncio.gather(run_once("order", payment, pay), cancel())

    assert handled is True
    assert attempts == 2  # first try conflicted, second saw the cancelled order
    async with order_engine.connect() as conn:
        events = await OrderStore(conn).events(order_id)
    assert [(e["version"], e["type"]) for e in events] == [
        (1, "OrderPlaced.v1"),
        (2, "OrderCancelled.v1"),
    ]


async def test_snapshot_every_n_events_and_replay_agree(order_engine: AsyncEngine) -> None:
    order_id = await place(order_engine, snapshot_every=2)
    async with order_engine.begin() as conn:
        store = OrderStore(conn, snapshot_every=2)
        order = await store.load(order_id)
        assert order is not None
        await store.append(order, order.cancel("test", datetime.now(UTC)))
    async with order_engine.connect() as conn:
        snap = (await conn.execute(text("SELECT version FROM order_snapshots"))).scalar_one()
        from_snapshot = await OrderStore(conn).load(order_id)
        await conn.execute(text("DELETE FROM order_snapshots"))
        from_events = await OrderStore(conn).load(order_id)
    assert snap == 2
    assert from_snapshot == from_events
    assert from_snapshot is not None and from_snapshot.status is OrderStatus.CANCELLED


async def test_state_as_of_a_past_time_is_replayed(order_engine: AsyncEngine) -> None:
    order_id = await place(order_engine)
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    async with order_engine.begin() as conn:
        store = OrderStore(conn)
        order = await store.load(order_id)
        assert order is not None
        await store.append(order, order.confirm(datetime.now(UTC)))
    async with order_engine.connect() as conn:
        store = OrderStore(conn)
        then = await store.load(order_id, as_of=between)
        now = await store.load(order_id)
        before = await store.load(order_id, as_of=between - timedelta(hours=1))
    assert then is not None and then.status is OrderStatus.PENDING
    assert now is not None and now.status is OrderStatus.CONFIRMED
    assert before is None
