"""Scheduled pruning: published outbox rows and old inbox records are deleted once they are
older than their retention, which outlasts any redelivery window. Unpublished rows are never
touched."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.schedule import run_periodically

log = logging.getLogger(__name__)

CHUNK = 5000
_PRUNE_OUTBOX = text(
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at IS NOT NULL"
    " AND published_at < now() - make_interval(secs => :retention) LIMIT :chunk)"
)
_PRUNE_INBOX = text(
    "DELETE FROM inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM inbox"
    " WHERE handled_at < now() - make_interval(secs => :retention) LIMIT :chunk)"
)


@dataclass(frozen=True)
class Pruned:
    outbox: int
    inbox: int


async def delete_in_chunks(engine: AsyncEngine, statement: TextClause, retention_s: float) -> int:
    """Run a ``DELETE … LIMIT :chunk`` (given ``:retention`` seconds) until it deletes less
    than a chunk, one short transaction per chunk; returns how many rows went."""
    total = 0
    while True:
        async with engine.begin() as conn:
            result = await conn.execute(statement, {"retention": retention_s, "chunk": CHUNK})
        deleted = int(result.rowcount)
        total += deleted
        if deleted < CHUNK:
            return total


async def prune(
    engine: AsyncEngine, *, outbox_retention_s: float, inbox_retention_s: float
) -> Pruned:
    return Pruned(
        outbox=await delete_in_chunks(engine, _PRUNE_OUTBOX, outbox_retention_s),
        inbox=await delete_in_chunks(engine, _PRUNE_INBOX, inbox_retention_s),
    )


async def run_pruner(
    engine: AsyncEngine,
    stop: asyncio.Event,
    *,
    interval_s: float,
    outbox_retention_s: float,
    inbox_retention_s: float,
) -> None:
    async def job() -> None:
        pruned = await prune(
            engine, outbox_retention_s=outbox_retention_s, inbox_retention_s=inbox_retention_s
        )
        if pruned.outbox or pruned.inbox:
            log.info("pruned %d outbox and %d inbox rows", pruned.outbox, pruned.inbox)

    await run_periodically(stop, interval_s, job, name="pruning")
