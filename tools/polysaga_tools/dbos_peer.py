"""The peer the benchmark compares the system with: the same saga as a DBOS Transact durable
workflow in one Python process on the stack's PostgreSQL (a scratch database holding both
its tables and DBOS's system tables). Reserve stock, charge the account, confirm; when the
stock is short the order is cancelled, when the charge fails the stock is released and the
order cancelled. Each step is a DBOS transaction (its effect and DBOS's checkpoint commit
together, at READ COMMITTED like our services), so a crashed workflow resumes where it was.

Run as ``python -m polysaga_tools.dbos_peer DSN --closed 400 --concurrency 32 --rate 10
--seconds 20``: it prints one JSON object with the closed-loop sagas/s and the open-loop
latencies at the given rate. In a process of its own, so its CPU is its own and DBOS's
global state never meets the benchmark's."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

SKUS = 20
USERS = 40
PRICE = Decimal("10.00")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS peer_stock (sku text PRIMARY KEY,"
    " available integer NOT NULL CHECK (available >= 0), reserved integer NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS peer_accounts (user_id text PRIMARY KEY,"
    " balance numeric(14, 2) NOT NULL CHECK (balance >= 0))",
    "CREATE TABLE IF NOT EXISTS peer_orders (order_id uuid PRIMARY KEY, user_id text NOT NULL,"
    " sku text NOT NULL, quantity integer NOT NULL, total numeric(14, 2) NOT NULL,"
    " status text NOT NULL, reason text, updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS peer_payments (order_id uuid PRIMARY KEY,"
    " user_id text NOT NULL, amount numeric(14, 2) NOT NULL, status text NOT NULL)",
)


@dataclass(frozen=True)
class PeerFigures:
    closed_loop_sagas_per_s: float
    closed_loop_orders: int
    concurrency: int
    rate_per_s: float
    latency_ms: dict[str, float]
    outcomes: dict[str, int]  # of the closed loop


def _sync_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def _seed(dsn: str) -> None:
    engine = sa.create_engine(_sync_url(dsn))
    try:
        with engine.begin() as conn:
            for statement in _SCHEMA:
                conn.execute(sa.text(statement))
            conn.execute(
                sa.text(
                    "INSERT INTO peer_stock (sku, available) VALUES (:sku, 10000000)"
                    " ON CONFLICT DO NOTHING"
                ),
                [{"sku": f"sku-{i}"} for i in range(SKUS)],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO peer_accounts (user_id, balance) VALUES (:u, 100000000)"
                    " ON CONFLICT DO NOTHING"
                ),
                [{"u": f"user-{i}"} for i in range(USERS)],
            )
    finally:
        engine.dispose()


async def run(dsn: str, closed: int, concurrency: int, rate: float, seconds: float) -> PeerFigures:
    from dbos import DBOS, AsyncSQLAlchemyDatasource, DBOSConfig

    _seed(dsn)
    config: DBOSConfig = {
        "name": "polysaga-peer",
        "system_database_url": dsn,
        "sys_db_pool_size": concurrency + 8,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    ds = await AsyncSQLAlchemyDatasource.create(
        dsn, engine_kwargs={"pool_size": concurrency, "max_overflow": concurrency}
    )

    @ds.transaction(isolation_level="READ COMMITTED")
    async def place(order_id: str, user_id: str, sku: str, quantity: int, total: str) -> None:
        await ds.sql_session().execute(
            sa.text(
                "INSERT INTO peer_orders (order_id, user_id, sku, quantity, total, status)"
                " VALUES (:id, :u, :sku, :q, :total, 'PENDING')"
            ),
            {"id": order_id, "u": user_id, "sku": sku, "q": quantity, "total": total},
        )

    @ds.transaction(isolation_level="READ COMMITTED")
    async def reserve(sku: str, quantity: int) -> bool:
        result = await ds.sql_session().execute(
            sa.text(
                "UPDATE peer_stock SET available = available - :q, reserved = reserved + :q"
                " WHERE sku = :sku AND available >= :q"
            ),
            {"sku": sku, "q": quantity},
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    @ds.transaction(isolation_level="READ COMMITTED")
    async def release(sku: str, quantity: int) -> None:
        await ds.sql_session().execute(
            sa.text(
                "UPDATE peer_stock SET available = available + :q, reserved = reserved - :q"
                " WHERE sku = :sku"
            ),
            {"sku": sku, "q": quantity},
        )

    @ds.transaction(isolation_level="READ COMMITTED")
    async def charge(order_id: str, user_id: str, amount: str) -> bool:
        session = ds.sql_session()
        result = await session.execute(
            sa.text(
                "UPDATE peer_accounts SET balance = balance - :a"
                " WHERE user_id = :u AND balance >= :a"
            ),
            {"u": user_id, "a": amount},
        )
        charged = bool(result.rowcount == 1)  # type: ignore[attr-defined]
        await session.execute(
            sa.text(
                "INSERT INTO peer_payments (order_id, user_id, amount, status)"
                " VALUES (:id, :u, :a, :s)"
            ),
            {"id": order_id, "u": user_id, "a": amount, "s": "CHARGED" if charged else "FAILED"},
        )
        return charged

    @ds.transaction(isolation_level="READ COMMITTED")
    async def decide(order_id: str, status: str, reason: str | None) -> None:
        await ds.sql_session().execute(
            sa.text(
                "UPDATE peer_orders SET status = :s, reason = :r, updated_at = now()"
                " WHERE order_id = :id"
            ),
            {"id": order_id, "s": status, "r": reason},
        )

    @DBOS.workflow()
    async def saga(order_id: str, user_id: str, sku: str, quantity: int, total: str) -> str:
        await place(order_id, user_id, sku, quantity, total)
        if not await reserve(sku, quantity):
            await decide(order_id, "CANCELLED", "stock_unavailable")
            return "CANCELLED"
        if not await charge(order_id, user_id, total):
            await release(sku, quantity)  # the compensation
            await decide(order_id, "CANCELLED", "payment_failed")
            return "CANCELLED"
        await decide(order_id, "CONFIRMED", None)
        return "CONFIRMED"

    DBOS.launch()
    outcomes: dict[str, int] = {}
    counter = iter(range(10**9))

    async def one() -> str:
        n = next(counter)
        order_id = str(uuid.uuid4())
        handle = await DBOS.start_workflow_async(
            saga, order_id, f"user-{n % USERS}", f"sku-{n % SKUS}", 1, str(PRICE)
        )
        outcome: str = await handle.get_result()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcome

    try:
        # Warm-up (connections, prepared plans), as our stack has served orders before.
        await asyncio.gather(*(one() for _ in range(concurrency)))
        outcomes.clear()
        remaining = closed

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        closed_rate = closed / (time.monotonic() - started)
        closed_outcomes = dict(outcomes)

        latencies: list[float] = []

        async def timed(due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await one()
            latencies.append((time.monotonic() - due) * 1000)

        start = time.monotonic() + 0.05
        count = int(rate * seconds)
        await asyncio.gather(*(timed(start + i / rate) for i in range(count)))
    finally:
        DBOS.destroy()
    latencies.sort()
    return PeerFigures(
        closed_loop_sagas_per_s=round(closed_rate, 1),
        closed_loop_orders=closed,
        concurrency=concurrency,
        rate_per_s=rate,
        latency_ms={
            "p50": round(_rank(latencies, 0.5), 1),
            "p99": round(_rank(latencies, 0.99), 1),
        },
        outcomes=closed_outcomes,
    )


def _rank(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m polysaga_tools.dbos_peer")
    parser.add_argument("dsn", help="postgresql://user:password@host:port/database")
    parser.add_argument("--closed", type=int, default=400, help="orders in the closed loop")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=10.0, help="open-loop orders per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="open-loop duration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    figures = asyncio.run(run(args.dsn, args.closed, args.concurrency, args.rate, args.seconds))
    out: dict[str, Any] = {
        "closed_loop_sagas_per_s": figures.closed_loop_sagas_per_s,
        "closed_loop_orders": figures.closed_loop_orders,
        "concurrency": figures.concurrency,
        "at_rate": {"rate_per_s": figures.rate_per_s, "saga_latency_ms": figures.latency_ms},
        "outcomes": figures.outcomes,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
