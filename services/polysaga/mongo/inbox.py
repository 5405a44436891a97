"""The inbox for Mongo-backed consumers. Without multi-document transactions the record
cannot commit with the effect, so the order is: skip if recorded, apply the effect (which
must itself be idempotent: conditional upserts guarded by a per-source version), then
record. A crash between effect and record re-applies an effect that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from polysaga.events.envelope import Envelope

_RACE_RETRIES = 5

INBOX_COLLECTION = "inbox"


def _key(consumer: str, event_id: str) -> str:
    return f"{consumer}:{event_id}"


async def ensure_indexes(inbox: AsyncCollection[dict[str, Any]]) -> None:
    await inbox.create_index("handled_at")


async def seen(inbox: AsyncCollection[dict[str, Any]], consumer: str, event_id: str) -> bool:
    return await inbox.find_one({"_id": _key(consumer, event_id)}, {"_id": 1}) is not None


async def record(
    inbox: AsyncCollection[dict[str, Any]], consumer: str, event_id: str, event_type: str
) -> bool:
    """True if this is the first record of the event for this consumer."""
    try:
        await inbox.insert_one(
            {
                "_id": _key(consumer, event_id),
                "event_type": event_type,
                "handled_at": datetime.now(UTC),
            }
        )
    except DuplicateKeyError:
        return False
    return True


async def prune(inbox: AsyncCollection[dict[str, Any]], retention_s: float) -> int:
    cutoff = datetime.now(UTC) - timedelta(seconds=retention_s)
    result = await inbox.delete_many({"handled_at": {"$lt": cutoff}})
    return int(result.deleted_count)


def inbox_runner(
    db: AsyncDatabase[dict[str, Any]], *, use_inbox: bool = True
) -> Callable[[str, Envelope, Callable[[Envelope, Any], Awaitable[None]]], Awaitable[bool]]:
    """Skip what is recorded, apply the (idempotent) effect, record. Two upserts racing for
    a new document make one raise DuplicateKeyError; running the handler again resolves it.

    A consumer whose every effect is a version-guarded conditional write (a projection)
    gets exactly-once effect from those guards alone; ``use_inbox=False`` then saves the
    two round trips per event the inbox costs."""
    collection = db[INBOX_COLLECTION]

    async def run(
        consumer: str, event: Envelope, handler: Callable[[Envelope, Any], Awaitable[None]]
    ) -> bool:
        if use_inbox and await seen(collection, consumer, event.event_id):
            return False
        for attempt in range(1, _RACE_RETRIES + 1):
            try:
                await handler(event, db)
                break
            except DuplicateKeyError:
                if attempt == _RACE_RETRIES:
                    raise
                await asyncio.sleep(0.005 * attempt)
        if not use_inbox:
            return True
        return await record(collection, consumer, event.event_id, event.name)

    return run
