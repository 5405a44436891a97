"""The async MongoDB client (pymongo's own AsyncMongoClient, not Motor)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure
from pymongo.uri_parser import parse_uri

MongoDatabase = AsyncDatabase[dict[str, Any]]


def connect(
    url: str, *, pool_size: int | None = None
) -> tuple[AsyncMongoClient[dict[str, Any]], MongoDatabase]:
    """A client and the database named in the URL's path (``mongodb://host:port/name``).
    ``pool_size`` overrides the URL's maxPoolSize (a read-only client may have more)."""
    name = parse_uri(url).get("database")
    if not name:
        raise ValueError(f"the MongoDB URL must name a database: {url!r}")
    options: dict[str, Any] = {"serverSelectionTimeoutMS": 5000, "tz_aware": True}
    if pool_size is not None:
        options["maxPoolSize"] = pool_size
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, **options)
    return client, client[name]


def is_unavailable(exc: BaseException) -> bool:
    """The server could not be reached or stopped answering (AutoReconnect, timeouts, no
    server selectable): the same work succeeds once it is back."""
    return isinstance(exc, ConnectionFailure)
