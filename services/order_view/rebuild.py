"""Rebuilds the view from event history into a fresh generation, then swaps it in.

1. Note each consumed stream's last sequence (S0); allocate generation N (new collections).
2. Replay every consumed stream from its start to S0 into N, stream after stream, with an
   ephemeral ack-less pull consumer. The handlers are commutative, so it does not matter
   that an order's StockReserved is applied before its OrderPlaced.
3. Catch up from S0+1 to the current end (S1), so that little is left for after the swap.
4. Swap: one guarded update of the pointer document (refused if a newer one is live).
5. Wait out the writers' pointer cache (POINTER_TTL_S), then catch up again, from S1+1 to
   the end as read after that (S2).

Live events during a rebuild: the live consumers are not paused (that would need every
replica's consumers to coordinate); they keep writing whichever generation the pointer names
when they handle an event (a copy at most POINTER_TTL_S old). An event handled against the
old generation was handled before the swap plus that delay, so it had been published before
S2 was read, and step 5 applies it to N.
Idempotent handlers make the overlap harmless. Between steps 4 and 5 (milliseconds: only
what arrived during step 3), N may lack the newest events; a read-your-writes reader waits.
The previous generation is kept, frozen, for comparison (``GET /admin/digest``) until the
next rebuild; older ones are dropped. Lag is not measured for replayed events.

Retention: a rebuild sees only what the streams still hold. The saga streams keep 30 days
(``polysaga.messaging.connection.STREAM_MAX_AGE_S``): an order older than that is missing
from a rebuilt view. USERS and CATALOG are kept whole (``ENTITY_STREAMS``), so names are
never lost. The result names the streams whose history no longer starts at sequence 1.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bson.errors import InvalidDocument
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from pymongo.errors import OperationFailure

from order_view.adapters import (
    POINTER_TTL_S,
    ActiveGeneration,
    ViewStore,
    allocate_generation,
    drop_generation,
    ensure_indexes,
    generation,
    read_pointer,
    stored_generations,
)
from order_view.application import EVENT_HANDLERS, SERVICE
from polysaga.events import declaration
from polysaga.events.envelope import Envelope
from polysaga.messaging.replay import Replayed, replay_range
from polysaga.mongo.client import MongoDatabase
from polysaga.mongo.client import is_unavailable as mongo_unavailable

log = logging.getLogger(__name__)


Positions = dict[declaration.Context, int]


class RebuildSupersededError(RuntimeError):
    """A newer generation was swapped in while this one was being built."""


class EventHistoryUnavailableError(RuntimeError):
    """The streams could not be replayed (NATS unreachable, a stream gone): nothing was
    swapped in, and the live generation stays."""


@dataclass(frozen=True)
class RebuildResult:
    generation: int
    events_applied: int
    events_skipped: int
    orders: int
    truncated_streams: list[str] = field(default_factory=list)


async def rebuild(
    js: JetStreamContext, db: MongoDatabase, active: ActiveGeneration
) -> RebuildResult:
    """Build generation N from the streams and make it the live one (steps above)."""
    try:
        return await _rebuild(js, db, active)
    except NatsError as exc:
        raise EventHistoryUnavailableError(
            f"the streams could not be replayed ({type(exc).__name__}); the live view is"
            " unchanged, try again"
        ) from exc


async def _rebuild(
    js: JetStreamContext, db: MongoDatabase, active: ActiveGeneration
) -> RebuildResult:
    async with active.rebuilding:
        contexts = declaration.consumed_by(SERVICE)
        firsts, s0 = await _stream_bounds(js, contexts)
        truncated = sorted(c.stream for c, first in firsts.items() if first > 1)
        number = await allocate_generation(db)
        view = ViewStore(generation(db, number))
        await ensure_indexes(view.gen)
        log.info("rebuilding the order view into generation %d", number)

        counts = await _replay(js, contexts, view, {c: 1 for c in contexts}, s0)
        _, s1 = await _stream_bounds(js, contexts)
        counts += await _replay(js, contexts, view, _after(s0), s1)

        previous = await read_pointer(db)
        if not await active.swap(db, number):
            await drop_generation(db, number)
            raise RebuildSupersededError(f"a generation newer than {number} is live")
        # Writers (here or in another replica) may use a pointer copy up to POINTER_TTL_S old:
        # wait that out, so every write made to the old generation precedes S2.
        await asyncio.sleep(POINTER_TTL_S + 0.5)
        _, s2 = await _stream_bounds(js, contexts)
        counts += await _replay(js, contexts, view, _after(s1), s2)

        for stale in await stored_generations(db):
            if stale < number and stale != previous:
                await drop_generation(db, stale)
        orders = await view.count_orders()
        log.info(
            "generation %d is live: %d events applied, %d skipped, %d orders",
            number,
            counts.applied,
            counts.skipped,
            orders,
        )
        return RebuildResult(number, counts.applied, counts.skipped, orders, truncated)


def _after(positions: Positions) -> Positions:
    return {context: seq + 1 for context, seq in positions.items()}


async def _stream_bounds(
    js: JetStreamContext, contexts: dict[declaration.Context, tuple[declaration.EventSpec, ...]]
) -> tuple[Positions, Positions]:
    firsts: Positions = {}
    lasts: Positions = {}
    for context in contexts:
        state = (await js.stream_info(context.stream)).state
        firsts[context], lasts[context] = state.first_seq, state.last_seq
    return firsts, lasts


async def _replay(
    js: JetStreamContext,
    contexts: dict[declaration.Context, tuple[declaration.EventSpec, ...]],
    view: ViewStore,
    start: Positions,
    end: Positions,
) -> Replayed:
    async def apply(event: Envelope[Any]) -> bool:
        return await _apply(event, view)

    counts = Replayed()
    for context in contexts:
        counts += await replay_range(js, SERVICE, context, start[context], end[context], apply)
    return counts


# What an event's own content can make a write fail with, whatever the store's health: a
# payload of the wrong shape, or a value the store refuses (FerretDB cannot hold a NUL in
# text). The live consumer dead-letters such an event; a rebuild skips and counts it, and
# goes on. The store being unavailable is not the event's fault: that stops the rebuild.
_EVENT_FAULTS = (KeyError, TypeError, ValueError, AttributeError, InvalidDocument, OperationFailure)


async def _apply(event: Envelope[Any], view: ViewStore) -> bool:
    """Apply one event (True); what the live consumer would dead-letter is skipped here
    (False). The replay itself skips what cannot be decoded."""
    handler = EVENT_HANDLERS.get(event.name)
    if handler is None:
        return False
    try:
        await handler(event, view)
    except _EVENT_FAULTS as exc:
        if mongo_unavailable(exc):
            raise
        log.warning("rebuild skips %s %s: %r", event.name, event.event_id, exc)
        return False
    return True
