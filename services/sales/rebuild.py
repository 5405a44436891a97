"""Rebuilds the sales projection from the ORDERS stream into a fresh generation and swaps it
in, keeping the one it replaced for comparison.

1. Note the stream's end (S0); the next generation is N. Replay the stream from its start to
   S0 into N (each sale counted once per generation, so order and repeats do not matter).
2. Lock the live pointer exclusively: live writers wait. Note the end again (S1) and replay
   (S0, S1] into N: every event a live writer counted in the old generation was published
   before S1, so N has it too.
3. Point at N, commit. The waiting writers go on, into N; what they apply that the replay
   had applied already changes nothing.
The generation before the replaced one is dropped. One rebuild at a time (an advisory lock,
across instances). A rebuild sees what the stream still holds: ORDERS keeps 30 days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.events import declaration
from polysaga.events.envelope import Envelope
from polysaga.messaging.replay import Apply, Replayed, replay_range, stream_end
from sales.adapters import PostgresSalesStore
from sales.application import EVENT_HANDLERS, READ_MODEL
from sales.domain import digest

log = logging.getLogger(__name__)

_REBUILD_LOCK = 0x5A1E5  # pg advisory lock key: one sales rebuild at a time


class RebuildRunningError(RuntimeError):
    """Another rebuild holds the lock."""


class UnknownGenerationError(LookupError):
    """No such generation is stored."""


@dataclass(frozen=True)
class RebuildResult:
    generation: int
    previous: int
    events_applied: int
    events_skipped: int
    orders: int
    digest: str
    previous_digest: str
    truncated: bool  # the stream no longer starts at its first event


async def generation_digest(engine: AsyncEngine, generation: int | None = None) -> str:
    async with engine.connect() as conn:
        return digest(*await PostgresSalesStore(conn, generation).everything())


async def digest_of(engine: AsyncEngine, generation: int | None) -> tuple[int, int, str]:
    """A generation's number (default: the live one), its orders counted, its digest."""
    async with engine.connect() as conn:
        store = PostgresSalesStore(conn, generation)
        if generation is not None and generation not in await store.generations():
            raise UnknownGenerationError(f"no generation {generation} is stored")
        number = generation or await store.live_generation()
        orders = await store.orders_counted()
    return number, orders, await generation_digest(engine, number)


async def rebuild(engine: AsyncEngine, js: JetStreamContext) -> RebuildResult:
    context = declaration.ORDERS
    async with engine.connect() as lock_conn:
        got = (
            await lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _REBUILD_LOCK})
        ).scalar_one()
        if not got:
            raise RebuildRunningError("a sales rebuild is already running")
        try:
            async with engine.begin() as conn:
                store = PostgresSalesStore(conn)
                number, live = await store.next_generation(), await store.live_generation()
            info = (await js.stream_info(context.stream)).state
            first, s0 = int(info.first_seq or 1), int(info.last_seq or 0)
            log.info(
                "rebuilding sales into generation %d from %s #%d-%d",
                number,
                context.stream,
                first,
                s0,
            )
            counts = await replay_range(
                js, READ_MODEL, context, first, s0, _applier(engine, number)
            )
            async with engine.begin() as conn:
                store = PostgresSalesStore(conn)
                live = await store.lock_for_swap()
                s1 = await stream_end(js, context)
                counts += await replay_range(
                    js, READ_MODEL, context, s0 + 1, s1, _applier(engine, number)
                )
                await store.swap(number, previous=live)
                stale = [g for g in await store.generations() if g not in (number, live)]
                await store.drop(stale)
            orders = await _orders(engine, number)
            result = RebuildResult(
                generation=number,
                previous=live,
                events_applied=counts.applied,
                events_skipped=counts.skipped,
                orders=orders,
                digest=await generation_digest(engine, number),
                previous_digest=await generation_digest(engine, live),
                truncated=first > 1,
            )
            log.info("sales generation %d is live: %s", number, result)
            return result
        finally:
            await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _REBUILD_LOCK})


def _applier(engine: AsyncEngine, generation: int) -> Apply:
    """Apply replayed events as the live consumer would, into ``generation``; their lag is
    not measured (it is the age of history, not the projection's delay)."""

    async def apply(event: Envelope[Any]) -> bool:
        handler = EVENT_HANDLERS.get(event.name)
        if handler is None:
            return False
        try:
            async with engine.begin() as conn:
                return await handler(event, PostgresSalesStore(conn, generation))
        except (KeyError, TypeError, ValueError) as exc:  # what the live side dead-letters
            log.warning("rebuild skips %s %s: %r", event.name, event.event_id, exc)
            return False

    return apply


async def _orders(engine: AsyncEngine, generation: int) -> int:
    async with engine.connect() as conn:
        return await PostgresSalesStore(conn, generation).orders_counted()


__all__ = ["RebuildResult", "RebuildRunningError", "Replayed", "generation_digest", "rebuild"]
