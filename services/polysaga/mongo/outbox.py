"""The document-embedded outbox: without multi-document transactions, a state change and
the events it causes are made atomic by writing both in one single-document update. Each
pending event sits in the document's ``outbox`` map under its event id, with the aggregate
sequence that orders it; ``outbox_pending`` counts them so the relay finds them with an
indexed query.

The relay publishes a document's events in sequence order (``Nats-Msg-Id`` = event id),
then removes each one with a conditional ``$unset``. Relays may run side by side: a
duplicate publish is dropped by the server's dedup window and absorbed by the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from nats.js import JetStreamContext
from pymongo.asynchronous.collection import AsyncCollection

from polysaga import metrics, tracing
from polysaga.events.envelope import Envelope, encode_body, to_headers
from polysaga.schedule import Throttle

log = logging.getLogger(__name__)

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"


def staged(events: Sequence[Envelope], first_seq: int) -> dict[str, Any]:
    """The update operators that stage events inside a document; merge them into the same
    update that changes the document's state. The current trace context is stored in each
    entry's headers, so the relay's publish span continues the writer's trace."""
    trace_headers = tracing.current_headers()
    entries = {
        f"{OUTBOX_FIELD}.{e.event_id}": {
            "seq": first_seq + i,
            "event_type": e.name,
            "subject": e.subject,
            "headers": {**to_headers(e), **trace_headers},
            "body": encode_body(e.data).decode(),
        }
        for i, e in enumerate(events)
    }
    return {"$set": entries, "$inc": {PENDING_FIELD: len(events)}}


def merge_updates(*updates: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, dict[str, Any]] = {}
    for update in updates:
        for operator, fields in update.items():
            merged.setdefault(operator, {}).update(fields)
    return merged


async def ensure_indexes(collection: AsyncCollection[dict[str, Any]]) -> None:
    await collection.create_index(PENDING_FIELD)


async def publish_pending(
    collection: AsyncCollection[dict[str, Any]], js: JetStreamContext, limit: int = 100
) -> int:
    """One relay round over the collection; returns how many events were published."""
    published = 0
    cursor = collection.find({PENDING_FIELD: {"$gt": 0}}, {OUTBOX_FIELD: 1}, limit=limit)
    async for document in cursor:
        pending = sorted((document.get(OUTBOX_FIELD) or {}).items(), key=lambda kv: kv[1]["seq"])
        for event_id, entry in pending:
            try:
                with tracing.publishing(entry["subject"], entry["headers"]) as headers:
                    await js.publish(entry["subject"], entry["body"].encode(), headers=headers)
            except Exception:
                # Stop at the first failure so this document's later events keep their order.
                log.warning("publish of %s failed; will retry", event_id, exc_info=True)
                break
            metrics.EVENTS_PUBLISHED.labels(event_type=entry["event_type"]).inc()
            await collection.update_one(
                {"_id": document["_id"], f"{OUTBOX_FIELD}.{event_id}": {"$exists": True}},
                {"$unset": {f"{OUTBOX_FIELD}.{event_id}": ""}, "$inc": {PENDING_FIELD: -1}},
            )
            published += 1
    return published


async def backlog(collection: AsyncCollection[dict[str, Any]]) -> int:
    pipeline: list[dict[str, Any]] = [
        {"$match": {PENDING_FIELD: {"$gt": 0}}},
        {"$group": {"_id": None, "n": {"$sum": f"${PENDING_FIELD}"}}},
    ]
    async for row in await collection.aggregate(pipeline):
        return int(row["n"])
    return 0


class EmbeddedOutboxRelay:
    """Publishes what documents of the given collections have staged. There is no LISTEN
    in MongoDB without change streams: the relay is woken in-process by the service's own
    writes (``wake``) and polls as a fallback."""

    def __init__(
        self,
        collections: Sequence[AsyncCollection[dict[str, Any]]],
        js: JetStreamContext,
        *,
        poll_interval_s: float = 0.5,
    ) -> None:
        self._collections = collections
        self._js = js
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        # The backlog gauge is an aggregation: once a second, not on every round.
        self._backlog_export = Throttle(1.0)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        for collection in self._collections:
            await ensure_indexes(collection)
        while not stop.is_set():
            self._wake.clear()
            try:
                for collection in self._collections:
                    await publish_pending(collection, self._js)
                if self._backlog_export.due():
                    metrics.OUTBOX_BACKLOG.set(sum([await backlog(c) for c in self._collections]))
            except Exception:
                log.exception("embedded outbox relay round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
