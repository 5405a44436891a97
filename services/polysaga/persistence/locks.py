"""Transaction-scoped advisory locks: what a service must not do twice at once for one key
(an order's step at a saga participant, one notification) waits for the transaction that
holds the key, on every instance of the service."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# hashtext of "scope:key": two keys may share a lock (they then only wait for each other);
# the same text gives the same lock in every release, so a rolling upgrade keeps the rule.
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


async def lock_until_commit(conn: AsyncConnection, scope: str, *key: str) -> None:
    """Hold the lock on (``scope``, ``key``…) until ``conn``'s transaction ends; waits while
    another transaction holds it."""
    if not key:
        raise ValueError("a lock needs a key besides its scope")
    await conn.execute(_LOCK, {"key": ":".join((scope, *key))})
