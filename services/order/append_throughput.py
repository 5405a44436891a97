"""``python -m order.append_throughput DSN``: how many events per second the order event
store appends (one OrderPlaced per new order, with its optimistic-concurrency check, outbox
row and status row, one transaction each) from N concurrent writers. ``polysaga bench`` runs
it beside the ``eventsourcing`` library's recorder on the same PostgreSQL; it prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import uvloop

from order.adapters import MIGRATIONS, PostgresOrderStore
from order.domain import Order
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import create_engine, migrate


async def appends_per_s(database_url: str, duration_s: float, concurrency: int) -> float:
    engine = create_engine(database_url, pool_size=concurrency)
    try:
        await migrate(engine, [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *MIGRATIONS])
        counts = [0] * concurrency
        deadline = time.monotonic() + duration_s

        async def writer(slot: int) -> None:
            while time.monotonic() < deadline:
                now = datetime.now(UTC)
                event = Order.place(
                    str(uuid.uuid4()),
                    "bench-user",
                    [("bench-sku", 1)],
                    {"bench-sku": Decimal("9.99")},
                    now,
                    now + timedelta(seconds=30),
                )
                async with engine.begin() as conn:
                    await PostgresOrderStore(conn).append(None, event)
                counts[slot] += 1

        started = time.monotonic()
        await asyncio.gather(*(writer(i) for i in range(concurrency)))
        return sum(counts) / (time.monotonic() - started)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url", help="postgresql+asyncpg://… of a scratch database")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    # On uvloop, as the service itself runs (polysaga.serve).
    rate = uvloop.run(appends_per_s(args.database_url, args.seconds, args.concurrency))
    print(json.dumps({"appends_per_s": rate}))


if __name__ == "__main__":
    main()
