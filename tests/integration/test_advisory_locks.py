"""Transaction-scoped advisory locks on a real PostgreSQL (``polysaga.persistence.locks``):
a second transaction asking for a held key waits until the first one ends, a different key
does not wait, and the lock goes with the transaction (commit or rollback)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.persistence.locks import lock_until_commit

pytestmark = pytest.mark.integration


async def _waiting_for_advisory_locks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
        return int(rows.scalar_one())


async def _until_one_waits(engine: AsyncEngine) -> None:
    async with asyncio.timeout(10):
        while await _waiting_for_advisory_locks(engine) == 0:
            await asyncio.sleep(0.02)


async def _lock_then_note(engine: AsyncEngine, key: str, notes: list[str]) -> None:
    async with engine.begin() as conn:
        await lock_until_commit(conn, "test", key)
        notes.append(f"second has {key}")


@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_a_held_key_waits_for_the_transaction_that_holds_it(
    engine: AsyncEngine, end: str
) -> None:
    notes: list[str] = []
    async with engine.connect() as first:
        transaction = await first.begin()
        await lock_until_commit(first, "test", "order-1")

        other = asyncio.create_task(_lock_then_note(engine, "order-2", notes))
        await other  # another key: no wait
        second = asyncio.create_task(_lock_then_note(engine, "order-1", notes))
        await _until_one_waits(engine)
        notes.append("first ends")
        await (transaction.commit() if end == "commit" else transaction.rollback())
        await asyncio.wait_for(second, 10)

    assert notes == ["second has order-2", "first ends", "second has order-1"]


async def test_a_lock_needs_a_key(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="key"):
            await lock_until_commit(conn, "test")
