"""This machine's limits, measured on the stack's own servers: JetStream publishes with acks
(gathered in windows, as the outbox relay publishes) and PostgreSQL single-row commits
(same server, same settings, a scratch database); and the bound they put on sagas/s given
what one saga costs."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg
import nats

# What one happy-path saga (OrderPlaced -> StockReserved -> PaymentProcessed ->
# OrderConfirmed -> NotificationSent) costs, counted from the code. Each PostgreSQL
# transaction below commits once; the outbox relays' claim-and-mark transactions are left
# out because they are batched (one per relay round, not per event), so under load they
# cost a fraction of a commit per saga - leaving them out keeps the bound an upper bound.
SAGA_COMMITS: tuple[tuple[str, int], ...] = (
    ("order: place (idempotency key, event, outbox row, status row)", 1),
    ("inventory: OrderPlaced (inbox, reservation, stock, outbox row)", 1),
    ("payment: StockReserved (inbox, charge, balance, outbox row)", 1),
    ("order: PaymentProcessed (inbox, event, outbox row, status row)", 1),
    ("notification: OrderConfirmed (inbox, notification, outbox row)", 1),
    # FerretDB v1 runs each MongoDB write as its own PostgreSQL transaction on this server.
    # order-view, per saga: OrderPlaced = summary upsert + one guarded copy of user and
    # product names; StockReserved, PaymentProcessed and OrderConfirmed = one upsert each.
    ("order-view via FerretDB: OrderPlaced (upsert, copy)", 2),
    ("order-view via FerretDB: StockReserved, PaymentProcessed, OrderConfirmed", 3),
)
SAGA_PUBLISHES: tuple[tuple[str, int], ...] = (
    ("OrderPlaced", 1),
    ("StockReserved", 1),
    ("PaymentProcessed", 1),
    ("OrderConfirmed", 1),
    ("NotificationSent", 1),
)


@dataclass(frozen=True)
class SagaBound:
    commits_per_saga: int
    publishes_per_saga: int
    by_commits: float
    by_publishes: float

    @property
    def sagas_per_s(self) -> float:
        return min(self.by_commits, self.by_publishes)

    def arithmetic(self, commits_per_s: float, publishes_per_s: float) -> str:
        return (
            f"min({commits_per_s:.0f} commits/s / {self.commits_per_saga} commits per saga"
            f" = {self.by_commits:.1f}, {publishes_per_s:.0f} publishes/s /"
            f" {self.publishes_per_saga} publishes per saga = {self.by_publishes:.1f})"
            f" = {self.sagas_per_s:.1f} sagas/s"
        )


def saga_bound(commits_per_s: float, publishes_per_s: float) -> SagaBound:
    """The rate no implementation of this saga could beat on these servers: each resource,
    even if it worked for the saga alone, runs out at its own limit."""
    commits = sum(n for _, n in SAGA_COMMITS)
    publishes = sum(n for _, n in SAGA_PUBLISHES)
    return SagaBound(commits, publishes, commits_per_s / commits, publishes_per_s / publishes)


async def jetstream_publishes_per_s(
    nats_url: str,
    duration_s: float,
    window: int = 256,
    *,
    body_bytes: int = 400,
    login: dict[str, str] | None = None,
) -> float:
    """Publish-with-ack rate into a scratch file-storage stream: ``window`` publishes in
    flight, then their acks gathered, like one relay round."""
    nc = await nats.connect(nats_url, name="polysaga-bench-limits", **(login or {}))
    js = nc.jetstream()
    stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
    subject = f"bench.{stream.lower()}"
    await js.add_stream(name=stream, subjects=[subject])
    body = b"x" * body_bytes
    published = 0
    try:
        deadline = time.monotonic() + duration_s
        started = time.monotonic()
        while time.monotonic() < deadline:
            futures = [
                await js.publish_async(subject, body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
                for _ in range(window)
            ]
            await asyncio.gather(*futures)
            published += window
        elapsed = time.monotonic() - started
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return published / elapsed


async def postgres_commits_per_s(admin_dsn: str, duration_s: float, concurrency: int = 8) -> float:
    """Single-row INSERT commits per second into a scratch database on the same server (so
    the same fsync, WAL and synchronous_commit settings), ``concurrency`` connections at once."""
    database = f"polysaga_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{database}"
    try:
        pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
        try:
            await pool.execute(
                "CREATE TABLE commits (id bigserial PRIMARY KEY, payload text NOT NULL)"
            )
            deadline = time.monotonic() + duration_s
            counts = [0] * concurrency

            async def commit_loop(slot: int) -> None:
                async with pool.acquire() as conn:
                    while time.monotonic() < deadline:
                        await conn.execute("INSERT INTO commits (payload) VALUES ($1)", "x" * 200)
                        counts[slot] += 1

            started = time.monotonic()
            await asyncio.gather(*(commit_loop(i) for i in range(concurrency)))
            elapsed = time.monotonic() - started
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return sum(counts) / elapsed
