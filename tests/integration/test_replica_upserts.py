"""The version-guarded replica writes of the runtime library, on real PostgreSQL and FerretDB:
whatever order the versions arrive in, and however often, the copy ends at the newest one,
and each write says whether it changed anything."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.mongo.client import MongoDatabase, connect
from polysaga.mongo.replica import (
    copy_if_newer,
    upsert_guarded,
    upsert_guarded_returning_before,
    upsert_if_newer,
)
from polysaga.persistence import replica
from polysaga.persistence.database import Migration, migrate

pytestmark = pytest.mark.integration

COPIES = Migration(
    "replica-test",
    1,
    (
        "CREATE TABLE copies (id text PRIMARY KEY, name text NOT NULL,"
        " version integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE untimed (id text PRIMARY KEY, name text NOT NULL, version integer NOT NULL)",
    ),
)


async def _rows(engine: AsyncEngine, table: str) -> list[tuple[str, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT id, name, version FROM {table} ORDER BY id"))
        return [(r.id, r.name, r.version) for r in rows]


async def _write(engine: AsyncEngine, version: int, table: str = "copies", **kw: Any) -> bool:
    async with engine.begin() as conn:
        return await replica.upsert_if_newer(
            conn, table, "id", {"id": "a", "name": f"v{version}", "version": version}, **kw
        )


@pytest.mark.parametrize("order", list(itertools.permutations([1, 2, 3])))
async def test_postgres_copy_ends_at_the_newest_version_in_any_order(
    engine: AsyncEngine, order: tuple[int, ...]
) -> None:
    await migrate(engine, [COPIES])

    written = [await _write(engine, v) for v in order]

    assert await _rows(engine, "copies") == [("a", "v3", 3)]
    # A version is taken exactly when it is newer than every one before it.
    assert written == [v == max(order[: i + 1]) for i, v in enumerate(order)]


async def test_postgres_repeat_changes_nothing_not_even_the_time(engine: AsyncEngine) -> None:
    await migrate(engine, [COPIES])
    assert await _write(engine, 2)
    async with engine.connect() as conn:
        first = (await conn.execute(text("SELECT updated_at FROM copies"))).scalar_one()

    assert not await _write(engine, 2)
    assert not await _write(engine, 1)
    assert await _write(engine, 5)

    async with engine.connect() as conn:
        last = (await conn.execute(text("SELECT updated_at FROM copies"))).scalar_one()
    assert await _rows(engine, "copies") == [("a", "v5", 5)]
    assert last > first


async def test_postgres_table_without_a_timestamp(engine: AsyncEngine) -> None:
    await migrate(engine, [COPIES])

    assert await _write(engine, 1, "untimed", touched=None)
    assert await _write(engine, 4, "untimed", touched=None)
    assert not await _write(engine, 3, "untimed", touched=None)

    assert await _rows(engine, "untimed") == [("a", "v4", 4)]


async def test_postgres_row_without_its_key_or_version_is_refused(engine: AsyncEngine) -> None:
    await migrate(engine, [COPIES])
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="'version'"):
            await replica.upsert_if_newer(conn, "copies", "id", {"id": "a", "name": "x"})
        with pytest.raises(ValueError, match="'id'"):
            await replica.upsert_if_newer(conn, "copies", "id", {"name": "x", "version": 1})
    assert await _rows(engine, "copies") == []


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[MongoDatabase]:
    client, db = connect(mongo_url)
    yield db
    await client.close()


@pytest.mark.parametrize("order", list(itertools.permutations([1, 2, 3])))
async def test_mongo_copy_ends_at_the_newest_version_in_any_order(
    mongo: MongoDatabase, order: tuple[int, ...]
) -> None:
    users = mongo["users"]

    written = [await upsert_if_newer(users, "u1", v, {"$set": {"name": f"v{v}"}}) for v in order]

    assert await users.find({}).to_list() == [{"_id": "u1", "name": "v3", "version": 3}]
    assert written == [v == max(order[: i + 1]) for i, v in enumerate(order)]


async def test_mongo_versions_of_two_fields_are_guarded_apart(mongo: MongoDatabase) -> None:
    products = mongo["products"]

    async def name(v: int) -> bool:
        update = {"$set": {"name": f"n{v}"}, "$setOnInsert": {"price_version": 0}}
        return await upsert_if_newer(products, "p", v, update, version_field="name_version")

    async def price(v: int) -> bool:
        update = {"$set": {"price": f"{v}.00"}, "$setOnInsert": {"name_version": 0}}
        return await upsert_if_newer(products, "p", v, update, version_field="price_version")

    assert await price(4)
    assert await name(2)  # older than the price, but the name's own guard is what counts
    assert not await price(3)
    assert not await name(2)

    assert await products.find_one({"_id": "p"}) == {
        "_id": "p",
        "name": "n2",
        "name_version": 2,
        "price": "4.00",
        "price_version": 4,
    }


async def test_mongo_concurrent_first_writes_create_one_document(mongo: MongoDatabase) -> None:
    users = mongo["users"]

    written = await asyncio.gather(
        *(upsert_if_newer(users, "u1", v, {"$set": {"name": f"v{v}"}}) for v in (1, 2, 3, 2, 1))
    )

    assert await users.find({}).to_list() == [{"_id": "u1", "name": "v3", "version": 3}]
    assert any(written)


async def test_mongo_guarded_upsert_reports_a_failed_guard(mongo: MongoDatabase) -> None:
    docs = mongo["docs"]
    await docs.insert_one({"_id": "d", "state": "ended"})

    assert not await upsert_guarded(
        docs, {"_id": "d", "state": {"$ne": "ended"}}, {"$set": {"state": "open"}}
    )
    assert await upsert_guarded(docs, {"_id": "e", "state": {"$ne": "ended"}}, {"$set": {"x": 1}})

    assert await docs.find({}).sort("_id").to_list() == [
        {"_id": "d", "state": "ended"},
        {"_id": "e", "x": 1},
    ]


async def test_mongo_copies_held_in_many_documents_move_only_forward(
    mongo: MongoDatabase,
) -> None:
    summaries = mongo["summaries"]
    await summaries.insert_many(
        [
            {"_id": "o1", "user_id": "u", "user_version": 0},
            {"_id": "o2", "user_id": "u", "user_version": 5},
            {"_id": "o3", "user_id": "other", "user_version": 0},
            {"_id": "o4", "user_id": "u"},  # no copy field: not a copy this write keeps
        ]
    )

    changed = await copy_if_newer(summaries, {"user_id": "u"}, "user_version", 3, {"user": "v3"})
    repeated = await copy_if_newer(summaries, {"user_id": "u"}, "user_version", 3, {"user": "x"})

    assert (changed, repeated) == (1, 0)
    assert await summaries.find({}).sort("_id").to_list() == [
        {"_id": "o1", "user_id": "u", "user_version": 3, "user": "v3"},
        {"_id": "o2", "user_id": "u", "user_version": 5},
        {"_id": "o3", "user_id": "other", "user_version": 0},
        {"_id": "o4", "user_id": "u"},
    ]


async def test_mongo_guarded_upsert_returns_the_document_as_it_was(mongo: MongoDatabase) -> None:
    docs = mongo["docs"]
    writes: list[str] = []

    def count() -> None:
        writes.append("write")

    async def add(step: str) -> tuple[bool, dict[str, Any] | None]:
        guard = {"_id": "d", f"steps.{step}": {"$exists": False}}
        update = {"$set": {f"steps.{step}": True}}
        return await upsert_guarded_returning_before(docs, guard, update, count_write=count)

    assert await add("a") == (True, None)  # created: nothing before
    assert writes == ["write"]
    assert await add("b") == (True, {"_id": "d", "steps": {"a": True}})
    assert await add("a") == (False, None)  # already there: the guard fails
    # One write each, but a failed guard costs the upsert and the plain update that tells why.
    assert writes == ["write"] * 4
    assert await docs.find_one({"_id": "d"}) == {"_id": "d", "steps": {"a": True, "b": True}}


async def test_mongo_writes_are_counted_as_sent(mongo: MongoDatabase) -> None:
    users, summaries = mongo["users"], mongo["summaries"]
    writes: list[str] = []

    def count() -> None:
        writes.append("write")

    await upsert_if_newer(users, "u1", 2, {"$set": {"name": "a"}}, count_write=count)
    await upsert_if_newer(users, "u1", 1, {"$set": {"name": "b"}}, count_write=count)
    await copy_if_newer(summaries, {"user_id": "u1"}, "user_version", 2, {}, count_write=count)

    # The first upsert is one write; the stale one is two (its guard fails); the copy one.
    assert len(writes) == 4
