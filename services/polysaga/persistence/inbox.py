"""The idempotent inbox: a consumer records the event id in the same transaction as the
effect, so a redelivered event finds its id already there and changes nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga.persistence.database import Migration

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
