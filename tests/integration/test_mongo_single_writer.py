"""Every write of a Mongo-backed service goes through one connection, whatever its URL says:
FerretDB v1 applies an update as read-modify-write, so updates of one document through two
connections at once lose one of them. Tested with many concurrent writers on real FerretDB."""

from __future__ import annotations

import asyncio

import pytest

from polysaga.settings import ServiceSettings
from polysaga.stores import MongoStore

pytestmark = pytest.mark.integration


async def test_concurrent_updates_of_one_document_through_a_store_lose_nothing(
    mongo_url: str,
) -> None:
    # The URL a user might give: no pool limit in it (the local stack's had maxPoolSize=1).
    url = mongo_url.replace("?maxPoolSize=1", "").replace("&maxPoolSize=1", "")
    assert "maxPoolSize" not in url
    store = MongoStore(ServiceSettings(mongo_url=url), (), None)
    counters = store.db["counters"]
    try:
        await counters.insert_one({"_id": "c", "n": 0})

        async def writer() -> None:
            for _ in range(5):
                await counters.update_one({"_id": "c"}, {"$inc": {"n": 1}})

        await asyncio.gather(*(writer() for _ in range(40)))
        doc = await counters.find_one({"_id": "c"})
        assert doc is not None
        assert doc["n"] == 200, f"{200 - doc['n']} of 200 concurrent updates were lost"
    finally:
        await store.close()
