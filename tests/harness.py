"""Helpers shared by the integration tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polysaga.events.envelope import Envelope


async def record_effect(event: Envelope, conn: AsyncConnection) -> None:
    """A handler whose effect is one row per application: duplicates would show."""
    await conn.execute(
        text("INSERT INTO effects (event_id, aggregate_id) VALUES (:id, :agg)"),
        {"id": event.event_id, "agg": event.aggregate_id},
    )


async def effect_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM effects"))).scalar_one())
