"""This machine's limits, measured on the stack's own servers: JetStream publishes with acks
(gathered in windows, as the outbox relay publishes), PostgreSQL single-row commits (same
server, same settings, a scratch database) and the MongoDB-wire server's writes (a scratch
collection); what one saga costs on each, counted on the servers; and the bound the two put
on sagas/s."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import nats
from nats.js import JetStreamContext

from polysaga.mongo.client import connect


@dataclass(frozen=True)
class SagaCosts:
    """What one saga cost on the servers, measured over the maximum phase (never counted
    from the code): PostgreSQL commits in every service database (FerretDB's own included:
    it runs each MongoDB write as a PostgreSQL transaction in the view's database), of which
    the outbox relays' own, messages stored in JetStream, and the order view's writes."""

    commits: float  # every committed transaction, read-only ones too
    write_transactions: float  # transaction ids assigned: the commits that write (and flush)
    relay_commits: float
    publishes: float
    view_writes: float


@dataclass(frozen=True)
class SagaBound:
    """The rate no implementation spending these costs could beat on these servers: each
    resource, even if it worked for the sagas alone, runs out at its own limit."""

    by_commits: float
    by_publishes: float
    by_view_writes: float

    @property
    def sagas_per_s(self) -> float:
        return min(self.by_commits, self.by_publishes, self.by_view_writes)

    @property
    def limited_by(self) -> str:
        figures = {
            "postgres_commits": self.by_commits,
            "jetstream_publishes": self.by_publishes,
            "mongo_writes": self.by_view_writes,
        }
        return min(figures, key=lambda k: figures[k])

    def arithmetic(self, costs: SagaCosts, limits: MachineLimits) -> str:
        return (
            f"min({limits.postgres_commits_per_s:.0f} commits/s /"
            f" {costs.write_transactions:.2f} writing transactions per saga"
            f" = {self.by_commits:.1f}, {limits.jetstream_publishes_per_s:.0f} publishes/s /"
            f" {costs.publishes:.2f} per saga = {self.by_publishes:.1f},"
            f" {limits.mongo_writes_per_s:.0f} view writes/s / {costs.view_writes:.2f} per saga"
            f" = {self.by_view_writes:.1f}) = {self.sagas_per_s:.1f} sagas/s"
        )


@dataclass(frozen=True)
class MachineLimits:
    jetstream_publishes_per_s: float
    postgres_commits_per_s: float
    mongo_writes_per_s: float  # one connection, as the order view writes
    mongo_writes_per_s_4_connections: float


def saga_bound(costs: SagaCosts, limits: MachineLimits) -> SagaBound:
    def per(limit: float, cost: float) -> float:
        return limit / cost if cost > 0 else float("inf")

    # The commit limit is measured with writing commits; a read-only one flushes nothing.
    return SagaBound(
        per(limits.postgres_commits_per_s, costs.write_transactions),
        per(limits.jetstream_publishes_per_s, costs.publishes),
        per(limits.mongo_writes_per_s, costs.view_writes),
    )


async def commits_by_database(admin_dsn: str) -> dict[str, int]:
    """Committed transactions so far per database (pg_stat_database). A backend reports its
    counts when it goes idle, at most once a second and within about 10 s: read the second
    figure of a difference no sooner than that after the work."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT datname, xact_commit FROM pg_stat_database WHERE datname IS NOT NULL"
        )
    finally:
        await conn.close()
    return {r["datname"]: int(r["xact_commit"]) for r in rows}


async def transaction_ids_assigned(admin_dsn: str) -> int:
    """The server's next transaction id: the difference of two readings is how many writing
    transactions (and writing subtransactions) ran in between, on every database."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        return int(await conn.fetchval("SELECT txid_snapshot_xmax(txid_current_snapshot())"))
    finally:
        await conn.close()


async def stream_messages(js: JetStreamContext, streams: Sequence[str]) -> int:
    """Messages stored in these streams so far (what the relays' publishes left there)."""
    total = 0
    for stream in streams:
        total += int((await js.stream_info(stream)).state.messages)
    return total


async def mongo_writes_per_s(mongo_url: str, duration_s: float, connections: int = 1) -> float:
    """The MongoDB-wire server's write rate, measured like the view writes: into a scratch
    collection, each document created by a guarded upsert and then changed by three guarded
    ``$set`` updates (one saga's view writes), each writer on its own connection and its own
    documents (FerretDB v1 loses concurrent updates of one document)."""
    client, db = connect(mongo_url, pool_size=connections)
    collection = db[f"bench_writes_{uuid.uuid4().hex[:8]}"]
    # Created before the clock starts: FerretDB makes a table and its indexes for it.
    await collection.insert_one({"_id": "warm-up"})
    counts = [0] * connections
    deadline = time.monotonic() + duration_s

    async def writer(slot: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            key = f"{slot}-{n}"
            n += 1
            await collection.update_one(
                {"_id": key, "step.0": {"$exists": False}},
                {"$set": {"step.0": 1, "total": "10.00"}, "$inc": {"v": 1}},
                upsert=True,
            )
            for step in (1, 2, 3):
                await collection.update_one(
                    {"_id": key, f"step.{step}": {"$exists": False}},
                    {"$set": {f"step.{step}": 1}, "$max": {"updated": step}},
                )
            counts[slot] += 4

    try:
        started = time.monotonic()
        await asyncio.gather(*(writer(i) for i in range(connections)))
        elapsed = time.monotonic() - started
    finally:
        await collection.drop()
        await client.close()
    return sum(counts) / elapsed


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
