"""The transactional outbox: events are written in the same transaction as the state change
that causes them; the relay publishes them to JetStream afterwards.

Relays are safe side by side: each claims rows with FOR UPDATE SKIP LOCKED, and only the
oldest unpublished row of each aggregate is claimable, so one aggregate's events leave in
the order they were written even with several relays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import msgspec
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
)

_INSERT = text(
    "INSERT INTO outbox (event_id, event_type, aggregate_id, subject, headers, body)"
    " VALUES (:event_id, :event_type, :aggregate_id, :subject, CAST(:headers AS jsonb), :body)"
)

# The head of each aggregate's queue: no older unpublished row of the same aggregate exists.
_CLAIM = text(
    "SELECT o.id, o.event_type, o.subject, o.headers::text AS headers, o.body FROM outbox o"
    " WHERE o.published_at IS NULL AND NOT EXISTS ("
    "   SELECT 1 FROM outbox e WHERE e.aggregate_id = o.aggregate_id"
    "   AND e.published_at IS NULL AND e.id < o.id)"
    " ORDER BY o.id LIMIT :limit FOR UPDATE OF o SKIP LOCKED"
)
_MARK_PUBLISHED = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")
_BACKLOG = text(
    "SELECT count(*) AS pending,"
    " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_age_s"
    " FROM outbox WHERE published_at IS NULL"
)


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
class ClaimedRow:
    id: int
    event_type: str
    subject: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_s: float


async def claim(conn: AsyncConnection, limit: int) -> list[ClaimedRow]:
    rows = await conn.execute(_CLAIM, {"limit": limit})
    return [
        ClaimedRow(r.id, r.event_type, r.subject, msgspec.json.decode(r.headers), bytes(r.body))
        for r in rows
    ]


async def publish(js: JetStreamContext, rows: Sequence[ClaimedRow], timeout_s: float) -> list[int]:
    """Publish without awaiting each ack before the next; returns the ids the server acked."""
    publications = [tracing.start_publish(r.subject, r.headers) for r in rows]
    futures = [
        await js.publish_async(r.subject, r.body, headers=p.headers)
        for r, p in zip(rows, publications, strict=True)
    ]
    for publication, future in zip(publications, futures, strict=True):
        publication.end_when_acked(future)
    done, pending = await asyncio.wait(futures, timeout=timeout_s) if futures else (set(), set())
    for future in pending:
        future.cancel()
    acked: list[int] = []
    for row, future in zip(rows, futures, strict=True):
        if future in done and future.exception() is None:
            acked.append(row.id)
            metrics.EVENTS_PUBLISHED.labels(event_type=row.event_type).inc()
        elif future in done:
            log.warning("publish of outbox row %s failed: %s", row.id, future.exception())
    return acked


async def mark_published(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(_MARK_PUBLISHED, {"ids": list(ids)})


async def backlog(conn: AsyncConnection) -> Backlog:
    row = (await conn.execute(_BACKLOG)).one()
    return Backlog(int(row.pending), float(row.oldest_age_s))


class OutboxRelay:
    """Publishes pending outbox rows; wakes on NOTIFY, polls as a fallback."""

    def __init__(
        self,
        engine: AsyncEngine,
        js: JetStreamContext,
        *,
        database_url: str,
        batch: int = 256,
        poll_interval_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._js = js
        self._dsn = asyncpg_dsn(database_url)
        self._batch = batch
        self._poll_interval_s = poll_interval_s
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        # The backlog gauge is a count query: once a second, not on every busy round.
        self._backlog_export = Throttle(1.0)

    async def publish_pending(self) -> int:
        """One round: claim, publish, mark. Returns the number of rows published."""
        async with self._engine.begin() as conn:
            rows = await claim(conn, self._batch)
            if not rows:
                return 0
            acked = await publish(self._js, rows, self._publish_timeout_s)
            await mark_published(conn, acked)
        return len(acked)

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    # PostgreSQL restarted or cut the connection: listen again, or the relay
                    # would only poll from now on.
                    listener = await self._listen(quiet=True)
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                    if self._backlog_export.due():
                        await self._export_backlog()
                except Exception:
                    log.exception("outbox relay round failed; retrying")
                    published = 0
                if published >= self._batch:
                    continue  # more is waiting
                await _wait_any(self._wake, stop, within_s=self._poll_interval_s)
        finally:
            if listener is not None:
                await listener.close()

    async def _listen(self, *, quiet: bool = False) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self._dsn, timeout=2)
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, TimeoutError, asyncpg.PostgresError):
            # Retried every round while the database is away: say it once, loudly.
            log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "LISTEN unavailable; the relay polls until it is back",
                exc_info=not quiet,
            )
            return None

    async def _export_backlog(self) -> None:
        async with self._engine.connect() as conn:
            current = await backlog(conn)
        metrics.OUTBOX_BACKLOG.set(current.pending)
        metrics.OUTBOX_OLDEST_PENDING_AGE.set(current.oldest_age_s)


async def _wait_any(wake: asyncio.Event, stop: asyncio.Event, within_s: float) -> None:
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
    _, pending = await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
