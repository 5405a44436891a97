"""The transactional outbox: events are written in the same transaction as the state change
that causes them; the relay publishes them to JetStream afterwards.

One relay per service database is active at a time: it holds a session-level advisory lock
on a connection of its own (which also LISTENs for the commit notifications), so the others
stand by and take over when its session ends. The active relay reads every pending row in
id order, publishes them all without awaiting each ack, and marks the acknowledged ones in
one statement: one aggregate's events leave in the order they were written, no row is
locked while NATS answers, and no pooled connection is held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga import metrics, tracing
from polysaga.events.envelope import Envelope, encode_body, to_headers
from polysaga.persistence.database import Migration, asyncpg_dsn
from polysaga.schedule import Throttle

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "polysaga_outbox"

MIGRATIONS = (
    Migration(
        "polysaga.outbox",
        1,
        (
            "CREATE TABLE outbox ("
            " id bigserial PRIMARY KEY,"
            " event_id uuid NOT NULL UNIQUE,"
            " event_type text NOT NULL,"
            " aggregate_id text NOT NULL,"
            " subject text NOT NULL,"
            " headers jsonb NOT NULL,"
            " body bytea NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " published_at timestamptz)",
            "CREATE INDEX outbox_pending_by_aggregate ON outbox (aggregate_id, id)"
            " WHERE published_at IS NULL",
            "CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL",
            "CREATE INDEX outbox_published_at ON outbox (published_at)"
            " WHERE published_at IS NOT NULL",
            # One notification per inserting statement; NOTIFY is delivered at commit.
            "CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', ''); RETURN NULL; END $$",
            "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox"
            " FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()",
        ),
    ),
    Migration(
        "polysaga.outbox",
        2,
        # The relay no longer looks for the head of each aggregate's queue (one relay is
        # active and reads pending rows in id order): the index only cost writes.
        ("DROP INDEX IF EXISTS outbox_pending_by_aggregate",),
    ),
)

_INSERT = text(
    "INSERT INTO outbox (event_id, event_type, aggregate_id, subject, headers, body)"
    " VALUES (:event_id, :event_type, :aggregate_id, :subject, CAST(:headers AS jsonb), :body)"
)

# Run by the relay on its own asyncpg connection (prepared once, reused every round).
_PENDING = (
    "SELECT id, event_type, subject, headers::text AS headers, body FROM outbox"
    " WHERE published_at IS NULL ORDER BY id LIMIT $1"
)
_MARK_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"
_BACKLOG = (
    "SELECT count(*) AS pending,"
    " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_s"
    " FROM outbox WHERE published_at IS NULL"
)
# The active relay of a database holds this session-level advisory lock (an arbitrary key;
# advisory locks are scoped to the database, so each service's relays compete only there).
RELAY_LOCK_KEY = 0x5A6A_0002


async def append(conn: AsyncConnection, events: Sequence[Envelope]) -> None:
    """Write events into the outbox inside the caller's transaction, with the current trace
    context in their headers: the relay's publish span continues the writer's trace."""
    if not events:
        return
    trace_headers = tracing.current_headers()
    await conn.execute(
        _INSERT,
        [
            {
                "event_id": e.event_id,
                "event_type": e.name,
                "aggregate_id": e.aggregate_id,
                "subject": e.subject,
                "headers": msgspec.json.encode({**to_headers(e), **trace_headers}).decode(),
                "body": encode_body(e.data),
            }
            for e in events
        ],
    )


@dataclass(frozen=True)
class PendingRow:
    id: int
    event_type: str
    subject: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_s: float


async def pending(conn: asyncpg.Connection, limit: int) -> list[PendingRow]:
    """The oldest unpublished rows, in the order they were written."""
    rows = await conn.fetch(_PENDING, limit)
    return [
        PendingRow(
            r["id"], r["event_type"], r["subject"], msgspec.json.decode(r["headers"]), r["body"]
        )
        for r in rows
    ]


async def publish(js: JetStreamContext, rows: Sequence[PendingRow], timeout_s: float) -> list[int]:
    """Publish without awaiting each ack before the next; returns the ids the server acked."""
    publications = [tracing.start_publish(r.subject, r.headers) for r in rows]
    futures = [
        await js.publish_async(r.subject, r.body, headers=p.headers)
        for r, p in zip(rows, publications, strict=True)
    ]
    for publication, future in zip(publications, futures, strict=True):
        publication.end_when_acked(future)
    done, not_done = await asyncio.wait(futures, timeout=timeout_s) if futures else (set(), set())
    for future in not_done:
        future.cancel()
    acked: list[int] = []
    for row, future in zip(rows, futures, strict=True):
        if future in done and future.exception() is None:
            acked.append(row.id)
            metrics.EVENTS_PUBLISHED.labels(event_type=row.event_type).inc()
        elif future in done:
            log.warning("publish of outbox row %s failed: %s", row.id, future.exception())
    return acked


async def mark_published(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    """One statement, one commit, whatever the number of rows."""
    if ids:
        await conn.execute(_MARK_PUBLISHED, list(ids))
        metrics.OUTBOX_RELAY_COMMITS.inc()


async def backlog(conn: asyncpg.Connection) -> Backlog:
    row = await conn.fetchrow(_BACKLOG)
    assert row is not None
    return Backlog(int(row["pending"]), float(row["oldest_age_s"]))


class OutboxRelay:
    """Publishes pending outbox rows while it is its database's active relay; wakes on
    NOTIFY (sent when an inserting transaction commits) and polls as a fallback."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        database_url: str,
        batch: int = 256,
        poll_interval_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self._js = js
        self._dsn = asyncpg_dsn(database_url)
        self._batch = batch
        self._poll_interval_s = poll_interval_s
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._active = False
        # The backlog gauge is a count query: once a second, not on every busy round.
        self._backlog_export = Throttle(1.0)

    @property
    def active(self) -> bool:
        """Whether this relay holds its database's relay lock (the others stand by)."""
        return self._active

    async def publish_pending(self) -> int:
        """One round: read pending rows, publish, mark. Returns the number published (0 while
        another relay is active)."""
        conn = await self._connection()
        if not self._active:
            self._active = bool(
                await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_KEY)
            )
            if not self._active:
                return 0
        rows = await pending(conn, self._batch)
        if not rows:
            return 0
        acked = await publish(self._js, rows, self._publish_timeout_s)
        await mark_published(conn, acked)
        return len(acked)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                    if self._active and self._backlog_export.due():
                        await self._export_backlog()
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    # PostgreSQL restarted or cut the connection: the lock went with the
                    # session; connect, listen and compete for it again next round.
                    log.warning(
                        "outbox relay lost its database connection; retrying", exc_info=True
                    )
                    await self.close()
                    published = 0
                except Exception:
                    log.exception("outbox relay round failed; retrying")
                    published = 0
                if published >= self._batch:
                    continue  # more is waiting
                await _wait_any(self._wake, stop, within_s=self._poll_interval_s)
        finally:
            await self.close()

    async def close(self) -> None:
        conn, self._conn, self._active = self._conn, None, False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._active = False
        conn = await asyncpg.connect(self._dsn, timeout=2)
        await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._conn = conn
        return conn

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _export_backlog(self) -> None:
        current = await backlog(await self._connection())
        metrics.OUTBOX_BACKLOG.set(current.pending)
        metrics.OUTBOX_OLDEST_PENDING_AGE.set(current.oldest_age_s)


async def _wait_any(wake: asyncio.Event, stop: asyncio.Event, within_s: float) -> None:
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
    _, not_done = await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    for waiter in not_done:
        waiter.cancel()
