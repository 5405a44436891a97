"""A digest of everything a running stack stores: every row of every table of every service's
PostgreSQL database and every document of every collection of its MongoDB-wire databases,
read with the stack's admin credentials. Tests that promise "changes nothing" compare two
(importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pymongo


def admin_dsn(state: dict[str, Any], database: str) -> str:
    pg = state["postgres"]
    password = (Path(state["data_dir"]) / "postgres-superuser-password").read_text().strip()
    return f"postgresql://postgres:{password}@127.0.0.1:{pg['port']}/{database}"


async def digest(state: dict[str, Any]) -> dict[str, str]:
    """A hash of every row of every table and document of every collection, per store."""
    digests: dict[str, str] = {}
    for service, url in state["postgres"]["databases"].items():
        conn = await asyncpg.connect(admin_dsn(state, urlsplit(url).path.lstrip("/")))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            for row in tables:
                table = row["tablename"]
                value = await conn.fetchval(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                    f' FROM "{table}" t'
                )
                digests[f"{service}.{table}"] = str(value)
        finally:
            await conn.close()
    for service, url in state["mongo"].items():
        parts = urlsplit(url)
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=5000
        )
        try:
            db = client[parts.path.lstrip("/")]
            for name in sorted(db.list_collection_names()):
                docs = sorted(json.dumps(d, default=str, sort_keys=True) for d in db[name].find())
                digests[f"{service}.{name}"] = hashlib.md5("|".join(docs).encode()).hexdigest()
        finally:
            client.close()
    return digests


async def quiet_digest(state: dict[str, Any], timeout_s: float = 60) -> dict[str, str]:
    """A digest that holds still for two seconds: earlier tests' sagas have settled."""
    deadline = time.monotonic() + timeout_s
    previous = await digest(state)
    while True:
        await asyncio.sleep(2)
        current = await digest(state)
        if current == previous:
            return current
        assert time.monotonic() < deadline, "the stack never went quiet"
        previous = current
