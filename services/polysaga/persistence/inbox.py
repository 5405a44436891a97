"""The idempotent inbox: a consumer records the event id in the same transaction as the
effect, so a redelivered event finds its id already there and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polysaga.events.envelope import Envelope
from polysaga.persistence.database import Migration, is_retryable

_IN_TRANSACTION_RETRIES = 5

MIGRATIONS = (
    Migration(
        "polysaga.inbox",
        1,
        (
            "CREATE TABLE inbox ("
            " consumer text NOT NULL,"
            " event_id uuid NOT NULL,"
            " event_type text NOT NULL,"
            " handled_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (consumer, event_id))",
            "CREATE INDEX inbox_handled_at ON inbox (handled_at)",
        ),
    ),
)

_RECORD = text(
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES (:consumer, :event_id, :event_type)"
    " ON CONFLICT DO NOTHING"
)


async def record_once(conn: AsyncConnection, consumer: str, event_id: str, event_type: str) -> bool:
    """True the first time this consumer sees the event; False for a duplicate."""
    result = await conn.execute(
        _RECORD, {"consumer": consumer, "event_id": event_id, "event_type": event_type}
    )
    return result.rowcount == 1


_RECORD_MANY = text(
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT :consumer, e.id, e.type"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS e(id, type)"
    " ON CONFLICT DO NOTHING RETURNING event_id::text"
)


async def record_many(conn: AsyncConnection, consumer: str, events: Sequence[Envelope]) -> set[str]:
    """Record a batch of events in one statement; returns the ids seen for the first time."""
    result = await conn.execute(
        _RECORD_MANY,
        {
            "consumer": consumer,
            "ids": [e.event_id for e in events],
            "types": [e.name for e in events],
        },
    )
    return {row[0] for row in result}


Handler = Callable[[Envelope, Any], Awaitable[None]]


def transactional_batch_runner(
    engine: AsyncEngine,
) -> Callable[[str, Sequence[tuple[Envelope, Handler]]], Awaitable[list[bool]]]:
    """Runs a batch of handlers and all their inbox records in one transaction (one BEGIN,
    one inbox statement, one COMMIT for the batch), in the batch's order; an event already
    recorded, or met twice in the batch, is not run again. All or nothing: a failing
    handler rolls the whole batch back (the consumer then runs it one message at a time);
    a transaction that lost a race is run again from the start."""

    async def run(consumer: str, items: Sequence[tuple[Envelope, Handler]]) -> list[bool]:
        for attempt in range(1, _IN_TRANSACTION_RETRIES + 1):
            try:
                async with engine.begin() as conn:
                    fresh = await record_many(conn, consumer, [e for e, _ in items])
                    handled: list[bool] = []
                    for event, handler in items:
                        first = event.event_id in fresh
                        fresh.discard(event.event_id)
                        if first:
                            await handler(event, conn)
                        handled.append(first)
                return handled
            except Exception as exc:
                if attempt == _IN_TRANSACTION_RETRIES or not is_retryable(exc):
                    raise
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    return run


def transactional_runner(
    engine: AsyncEngine,
) -> Callable[[str, Envelope, Callable[[Envelope, Any], Awaitable[None]]], Awaitable[bool]]:
    """Runs a handler and its inbox record in one transaction; a transaction that lost a
    race (optimistic concurrency, deadlock) is run again from the start on fresh state."""

    async def run(
        consumer: str, event: Envelope, handler: Callable[[Envelope, Any], Awaitable[None]]
    ) -> bool:
        for attempt in range(1, _IN_TRANSACTION_RETRIES + 1):
            try:
                async with engine.begin() as conn:
                    if not await record_once(conn, consumer, event.event_id, event.name):
                        return False
                    await handler(event, conn)
                return True
            except Exception as exc:
                if attempt == _IN_TRANSACTION_RETRIES or not is_retryable(exc):
                    raise
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    return run
