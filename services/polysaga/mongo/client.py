"""The async MongoDB client (pymongo's own AsyncMongoClient, not Motor)."""

from __future__ import annotations

import re
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure
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


# FerretDB reports that its own PostgreSQL backend is down (restarting, refusing
# connections) as a generic InternalError (code 1) whose message carries libpq's SQLSTATE.
_BACKEND_UNAVAILABLE = re.compile(r"SQLSTATE (08\w{3}|57P0[123])|failed to connect to")


def is_unavailable(exc: BaseException) -> bool:
    """The server, or the store behind it, could not be reached or stopped answering
    (AutoReconnect, timeouts, no server selectable, FerretDB's backend down): the same work
    succeeds once it is back."""
    if isinstance(exc, ConnectionFailure):
        return True
    return (
        isinstance(exc, OperationFailure)
        and exc.code == 1
        and _BACKEND_UNAVAILABLE.search(str(exc)) is not None
    )
