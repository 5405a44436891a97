"""Which MongoDB commands a MongoDB-wire server (FerretDB v1 here) handles well: each write
and read the view could use, on 100 documents, timed, with a time limit so a command that
never returns is reported as such rather than hanging the probe; and whether concurrent
updates of one document through several connections lose any.

``python -m polysaga_tools.mongo_probe 'mongodb://…/db' [--documents 100] [--limit-s 30]``
prints one JSON object: per operation, the wall time in ms (total and per document) or
"timeout" / the error. It writes only into a scratch collection, dropped afterwards."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import InsertOne, UpdateOne

from polysaga.mongo.client import MongoDatabase, connect


async def _timed(
    work: Callable[[], Awaitable[Any]], documents: int, limit_s: float
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(work(), limit_s)
    except TimeoutError:
        return {"result": f"did not return within {limit_s:g} s"}
    except Exception as exc:
        return {"result": f"error: {type(exc).__name__}: {str(exc)[:200]}"}
    ms = (time.perf_counter() - started) * 1000
    return {"ms": round(ms, 1), "ms_per_document": round(ms / documents, 3)}


async def probe(url: str, documents: int, limit_s: float) -> dict[str, Any]:
    client, db = connect(url, pool_size=1)
    name = f"probe_{uuid.uuid4().hex[:8]}"
    collection = db[name]
    ids = [f"d{i}" for i in range(documents)]
    results: dict[str, Any] = {"documents": documents}

    async def one_by_one_upserts() -> None:
        for i in ids:
            await collection.update_one(
                {"_id": i, "h.a": {"$exists": False}}, {"$set": {"h.a": 1, "n": 0}}, upsert=True
            )

    async def one_by_one_guarded_sets() -> None:
        for i in ids:
            await collection.update_one(
                {"_id": i, "h.b": {"$exists": False}}, {"$set": {"h.b": 1}, "$max": {"m": 2}}
            )

    async def bulk(ordered: bool, step: str) -> None:
        await collection.bulk_write(
            [
                UpdateOne({"_id": i, f"h.{step}": {"$exists": False}}, {"$set": {f"h.{step}": 1}})
                for i in ids
            ],
            ordered=ordered,
        )

    async def bulk_upserts() -> None:
        await collection.bulk_write(
            [UpdateOne({"_id": f"u{i}"}, {"$set": {"x": 1}}, upsert=True) for i in ids],
            ordered=True,
        )

    async def insert_many() -> None:
        await collection.insert_many([{"_id": f"i{i}", "x": 1} for i in ids], ordered=True)

    async def bulk_inserts() -> None:
        await collection.bulk_write([InsertOne({"_id": f"b{i}", "x": 1}) for i in ids])

    async def update_many() -> None:
        await collection.update_many({"_id": {"$in": ids}}, {"$set": {"many": 1}})

    async def find_in() -> None:
        found = await collection.find({"_id": {"$in": ids}}).to_list()
        assert len(found) == documents

    async def delete_many() -> None:
        await collection.delete_many({"_id": {"$regex": "^i"}})

    try:
        plan: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("update_one upsert, one by one", one_by_one_upserts),
            ("update_one guarded $set, one by one", one_by_one_guarded_sets),
            ("find {_id: {$in: ids}}", find_in),
            ("update_many {_id: {$in: ids}}", update_many),
            ("insert_many (ordered)", insert_many),
            ("bulk_write InsertOne", bulk_inserts),
            ("delete_many", delete_many),
            ("bulk_write UpdateOne upsert (ordered)", bulk_upserts),
            ("bulk_write UpdateOne guarded (ordered)", lambda: bulk(True, "c")),
            ("bulk_write UpdateOne guarded (unordered)", lambda: bulk(False, "d")),
        ]
        for label, work in plan:
            results[label] = await _timed(work, documents, limit_s)
        results["lost updates, 2 connections x 100 $inc of one document"] = await _lost_updates(
            url, db, limit_s
        )
    finally:
        await asyncio.wait_for(collection.drop(), limit_s)
        await client.close()
    return results


async def _lost_updates(url: str, db: MongoDatabase, limit_s: float) -> dict[str, Any]:
    """Two connections each increment one counter 100 times: any total short of 200 is an
    update lost to the read-modify-write."""
    collection = db[f"probe_inc_{uuid.uuid4().hex[:8]}"]
    await collection.insert_one({"_id": "counter", "n": 0})
    clients = [connect(url, pool_size=1) for _ in range(2)]

    async def bump(c: MongoDatabase) -> None:
        for _ in range(100):
            await c[collection.name].update_one({"_id": "counter"}, {"$inc": {"n": 1}})

    try:
        await asyncio.wait_for(asyncio.gather(*(bump(d) for _, d in clients)), limit_s)
        doc = await collection.find_one({"_id": "counter"})
        assert doc is not None
        return {"applied": int(doc["n"]), "lost": 200 - int(doc["n"])}
    finally:
        await collection.drop()
        for client, _ in clients:
            await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m polysaga_tools.mongo_probe")
    parser.add_argument("url", help="mongodb://user:password@host:port/database?...")
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--limit-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(probe(args.url, args.documents, args.limit_s)), indent=2))


if __name__ == "__main__":
    main()
