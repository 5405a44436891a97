"""The document-embedded outbox: without multi-document transactions, a state change and
the events it causes are made atomic by writing both in one single-document update. Each
pending event sits in the document's ``outbox`` map under its event id, with the aggregate
sequence that orders it; ``outbox_pending`` counts them so the relay finds them with an
indexed query.

The relay publishes every staged event of a round in sequence order per document
(``Nats-Msg-Id`` = event id) without awaiting each ack, then removes a document's acked
events with one conditional ``$unset``. Relays may run side by side: a duplicate publish is
dropped by the server's dedup window and absorbed by the inbox.
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
    collection: AsyncCollection[dict[str, Any]],
    js: JetStreamContext,
    limit: int = 100,
    timeout_s: float = 5.0,
) -> int:
    """One relay round over the collection: every staged event of up to ``limit`` documents
    published without awaiting each ack, then one update per document removing the acked
    ones. Returns how many events were published."""
    documents = await collection.find(
        {PENDING_FIELD: {"$gt": 0}}, {OUTBOX_FIELD: 1}, limit=limit
    ).to_list()
    sends: list[tuple[Any, str, dict[str, Any], asyncio.Future[Any]]] = []
    for document in documents:
        pending = sorted((document.get(OUTBOX_FIELD) or {}).items(), key=lambda kv: kv[1]["seq"])
        for event_id, entry in pending:
            publication = tracing.start_publish(entry["subject"], entry["headers"])
            future = await js.publish_async(
                entry["subject"], entry["body"].encode(), headers=publication.headers
            )
            publication.end_when_acked(future)
            sends.append((document["_id"], event_id, entry, future))
    if not sends:
        return 0
    done, not_done = await asyncio.wait([f for *_, f in sends], timeout=timeout_s)
    for future in not_done:
        future.cancel()
    acked: dict[Any, list[str]] = {}
    for doc_id, event_id, entry, future in sends:
        if future in done and future.exception() is None:
            acked.setdefault(doc_id, []).append(event_id)
            metrics.EVENTS_PUBLISHED.labels(event_type=entry["event_type"]).inc()
        else:
            log.warning("publish of %s failed; will retry", event_id)
    for doc_id, event_ids in acked.items():
        await _remove(collection, doc_id, event_ids)
    return sum(len(ids) for ids in acked.values())


async def _remove(
    collection: AsyncCollection[dict[str, Any]], doc_id: Any, event_ids: list[str]
) -> None:
    """Remove published entries in one update, guarded so none is counted twice; if another
    relay removed some first, each one on its own."""
    paths = [f"{OUTBOX_FIELD}.{event_id}" for event_id in event_ids]
    result = await collection.update_one(
        {"_id": doc_id, **{path: {"$exists": True} for path in paths}},
        {"$unset": dict.fromkeys(paths, ""), "$inc": {PENDING_FIELD: -len(paths)}},
    )
    if result.matched_count == 1 or len(paths) == 1:
        return
    for path in paths:
        await collection.update_one(
            {"_id": doc_id, path: {"$exists": True}},
            {"$unset": {path: ""}, "$inc": {PENDING_FIELD: -1}},
        )


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
