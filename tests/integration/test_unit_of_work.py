"""The PostgreSQL unit of work on a real server: commit is the only way out (leaving the
block any other way rolls back), the store exists only inside the block, and each unit is a
transaction of its own. The MongoDB unit wakes the relay on commit and on nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polysaga.mongo.client import MongoDatabase, connect
from polysaga.mongo.unit_of_work import MongoUnitOfWork
from polysaga.persistence.database import Migration, migrate
from polysaga.persistence.unit_of_work import PostgresUnitOfWork
from polysaga.unit_of_work import UnitNotOpenError

pytestmark = pytest.mark.integration

NOTES = Migration("uow-test", 1, ("CREATE TABLE notes (id text PRIMARY KEY)",))


class Notes:
    """A store adapter over the unit's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, note_id: str) -> None:
        await self.conn.execute(text("INSERT INTO notes VALUES (:id)"), {"id": note_id})


async def notes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM notes ORDER BY id"))
        return [r.id for r in rows]


class Refused(Exception):
    pass


async def test_only_a_commit_makes_the_work_durable(engine: AsyncEngine) -> None:
    await migrate(engine, [NOTES])

    async with PostgresUnitOfWork(engine, Notes) as uow:
        await uow.store.add("committed")
        await uow.commit()
    async with PostgresUnitOfWork(engine, Notes) as uow:
        await uow.store.add("left-without-commit")

    async def failing() -> None:
        async with PostgresUnitOfWork(engine, Notes) as uow:
            await uow.store.add("failed")
            raise Refused

    with pytest.raises(Refused):
        await failing()

    assert await notes(engine) == ["committed"]


async def test_the_store_lives_only_inside_its_unit(engine: AsyncEngine) -> None:
    await migrate(engine, [NOTES])
    unit = PostgresUnitOfWork(engine, Notes)

    with pytest.raises(UnitNotOpenError):
        unit.store  # noqa: B018
    async with unit:
        store = unit.store
        await store.add("a")
        await unit.commit()
    with pytest.raises(UnitNotOpenError):
        unit.store  # noqa: B018
    # A unit can be used again; its second round is a transaction of its own.
    async with unit:
        await unit.store.add("b")
    assert await notes(engine) == ["a"]


async def test_two_units_are_two_transactions(engine: AsyncEngine) -> None:
    await migrate(engine, [NOTES])
    async with PostgresUnitOfWork(engine, Notes) as first:
        await first.store.add("first")
        async with PostgresUnitOfWork(engine, Notes) as second:
            await second.store.add("second")
            await second.commit()
        assert await notes(engine) == ["second"]  # the first has not committed yet
        await first.commit()
    assert await notes(engine) == ["first", "second"]


async def test_the_mongo_unit_wakes_the_relay_on_commit_only(mongo_url: str) -> None:
    client, db = connect(mongo_url)
    woken: list[str] = []
    try:
        unit = MongoUnitOfWork(db, lambda d: d, on_commit=lambda: woken.append("woken"))
        async with unit:
            store: MongoDatabase = unit.store
            await store["things"].insert_one({"_id": "x"})
        assert woken == []
        async with unit:
            await unit.commit()
        assert woken == ["woken"]
        with pytest.raises(UnitNotOpenError):
            await unit.commit()
    finally:
        await client.close()
