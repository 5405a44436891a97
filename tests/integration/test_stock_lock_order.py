"""Issue 14, class 10: concurrent multi-SKU orders never deadlock on the stock rows. Inventory
reserves and releases through its real reactions, each in a transaction of its own with its
outbox rows, as the consumer runs them; PostgreSQL answers a lock cycle with SQLSTATE 40P01,
so every deadlock would show as one such error (and in pg_stat_database.deadlocks)."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import event_samples as samples
from inventory import application as inventory_app
from inventory.adapters import MIGRATIONS, PostgresInventoryStore
from polysaga.events.envelope import Envelope, new_event
from polysaga.persistence import outbox
from polysaga.persistence.database import create_engine, migrate

# Names of different lengths, as real catalogues have: PostgreSQL's jsonb keeps object keys
# shortest first, so a reservation's items come back from the database in another order
# than the sorted one an order's items are reserved in.
SKUS = ["TEA", "COFFEE", "MATE-1", "CHAI-LATTE", "BOBA"]
ORDERS = 120
CONCURRENCY = 20


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig.__cause__, "sqlstate", None)


@pytest.mark.parametrize("catalogue", [0, 5000], ids=["five-skus", "five-thousand-skus"])
async def test_concurrent_multi_sku_orders_and_releases_never_deadlock(
    database_url: str, catalogue: int
) -> None:
    """Five SKUs alone are read by a sequential scan (rows in heap order, which every update
    changes); among thousands the planner walks the primary key in the order it is given."""
    engine: AsyncEngine = create_engine(database_url, pool_size=CONCURRENCY)
    try:
        await migrate(engine, [*outbox.MIGRATIONS, *MIGRATIONS])
        async with engine.begin() as conn:
            for sku in SKUS:
                await PostgresInventoryStore(conn).set_available(sku, 1_000_000)
            await conn.execute(
                text(
                    "INSERT INTO stock (sku, available)"
                    " SELECT 'other-' || n, 1 FROM generate_series(1, :n) AS n"
                ),
                {"n": catalogue},
            )
            await conn.execute(text("ANALYZE stock"))
            before = (
                await conn.execute(
                    text(
                        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                    )
                )
            ).scalar_one()

        rng = random.Random(14)
        deadlocks = 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def run(reaction: str, event: Envelope[Any]) -> list[Envelope[Any]]:
            nonlocal deadlocks
            while True:
                try:
                    async with gate, engine.begin() as conn:
                        store = PostgresInventoryStore(conn)
                        emitted = await getattr(inventory_app, reaction)(event, store)
                        await outbox.append(conn, emitted)
                        # The rest of a consumer's transaction (inbox row, the commit's
                        # flush) holds the row locks a little longer, as on a live stack.
                        await conn.execute(text("SELECT pg_sleep(0.01)"))
                        return list(emitted)
                except DBAPIError as exc:
                    if _sqlstate(exc) != "40P01":
                        raise
                    deadlocks += 1

        async def order_and_maybe_cancel() -> None:
            order_id = uuid.uuid4()
            # 1-3 SKUs out of 5, in a random order, as customers list them.
            skus = rng.sample(SKUS, rng.randint(1, 3))
            lines = samples.order_lines(*((s, rng.randint(1, 3), "1.00") for s in skus))
            placed = new_event(samples.order_placed(order_id=order_id, items=lines))
            emitted = await run("on_order_placed", placed)
            assert [e.name for e in emitted] == ["StockReserved"]
            if rng.random() < 0.5:
                cancelled = new_event(samples.order_cancelled(order_id=order_id, items=lines))
                assert [e.name for e in await run("on_order_cancelled", cancelled)] == [
                    "StockReleased"
                ]

        await asyncio.gather(*(order_and_maybe_cancel() for _ in range(ORDERS)))

        async with engine.connect() as conn:
            store = PostgresInventoryStore(conn)
            levels = [await store.level(sku) for sku in SKUS]
            reserved = (
                await conn.execute(
                    text(
                        "SELECT coalesce(sum((value)::int), 0) FROM reservations,"
                        " jsonb_each_text(items) WHERE status = 'RESERVED'"
                    )
                )
            ).scalar_one()
            after = (
                await conn.execute(
                    text(
                        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                    )
                )
            ).scalar_one()
        assert deadlocks == 0, f"{deadlocks} transactions were aborted as deadlock victims"
        assert after == before, f"pg_stat_database counted {after - before} deadlocks"
        # Nothing lost to the retries either: held stock is what the open reservations hold.
        assert sum(level.reserved for level in levels if level) == reserved
        assert all(level and level.available + level.reserved == 1_000_000 for level in levels)
    finally:
        await engine.dispose()
