"""Pruning removes only published outbox rows and inbox records past their retention."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from event_samples import order_placed
from polysaga.events.envelope import new_event
from polysaga.persistence import inbox, outbox
from polysaga.persistence.pruning import prune


async def test_prune_removes_only_what_is_safe(engine: AsyncEngine) -> None:
    events = [new_event(order_placed()) for _ in range(4)]
    async with engine.begin() as conn:
        await outbox.append(conn, events)
        # 0: published long ago (prunable); 1: published just now; 2: pending and old; 3: pending
        await conn.execute(
            text(
                "UPDATE outbox SET published_at = now() - interval '2 hours',"
                " created_at = now() - interval '3 hours' WHERE event_id = :id"
            ),
            {"id": events[0].event_id},
        )
        await conn.execute(
            text("UPDATE outbox SET published_at = now() WHERE event_id = :id"),
            {"id": events[1].event_id},
        )
        await conn.execute(
            text("UPDATE outbox SET created_at = now() - interval '3 days' WHERE event_id = :id"),
            {"id": events[2].event_id},
        )
        for event in events[:2]:
            await inbox.record_once(conn, "svc", event.event_id, event.name)
        await conn.execute(
            text("UPDATE inbox SET handled_at = now() - interval '8 days' WHERE event_id = :id"),
            {"id": events[0].event_id},
        )

    pruned = await prune(engine, outbox_retention_s=3600, inbox_retention_s=7 * 24 * 3600)

    assert (pruned.outbox, pruned.inbox) == (1, 1)
    async with engine.connect() as conn:
        left = {str(r[0]) for r in await conn.execute(text("SELECT event_id FROM outbox"))}
        kept_inbox = {str(r[0]) for r in await conn.execute(text("SELECT event_id FROM inbox"))}
    assert left == {e.event_id for e in events[1:]}
    assert kept_inbox == {events[1].event_id}


async def test_the_order_service_prunes_idempotency_keys_past_their_retention(
    database_url: str,
) -> None:
    from order.adapters import MIGRATIONS, PRUNE_IDEMPOTENCY_KEYS
    from polysaga.persistence.database import create_engine, migrate
    from polysaga.persistence.pruning import delete_in_chunks

    engine = create_engine(database_url, pool_size=2)
    try:
        await migrate(engine, [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *MIGRATIONS])
        async with engine.begin() as conn:
            for key, age_s in (("old", 2 * 24 * 3600.0), ("fresh", 3600.0)):
                await conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (key, request_hash, order_id, version,"
                        " created_at) VALUES (:key, 'h', :order_id, 1,"
                        " now() - make_interval(secs => :age_s))"
                    ),
                    {"key": key, "order_id": str(uuid.uuid4()), "age_s": age_s},
                )
        assert await delete_in_chunks(engine, PRUNE_IDEMPOTENCY_KEYS, 24 * 3600) == 1
        async with engine.connect() as conn:
            left = [r[0] for r in await conn.execute(text("SELECT key FROM idempotency_keys"))]
        assert left == ["fresh"]
    finally:
        await engine.dispose()
