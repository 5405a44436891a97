"""Engine creation and the schema-migration runner each service applies at start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from polysaga import tracing
from polysaga.unit_of_work import RetryableConflict

# Arbitrary constant: migrations of concurrent starters are serialised by this advisory lock.
_MIGRATION_LOCK_KEY = 0x5A6A_0001


_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableConflict):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(
            getattr(exc.orig, "__cause__", None), "sqlstate", None
        )
        return sqlstate in _RETRYABLE_SQLSTATES
    return False


# Connection exceptions (class 08) and a server shutting down, crashed or starting up.
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03"}


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or went away (a restart, a network fault), as
    opposed to a statement that failed: the same work succeeds once it is back."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = str(getattr(current, "sqlstate", "") or "")
        if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL refused a value (SQLSTATE class 22: a malformed UUID, a number out of
    range, a NUL in text): the input was wrong, and the statement's transaction is gone."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if str(getattr(current, "sqlstate", "") or "").startswith("22"):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def is_unique_violation(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )
    return sqlstate == "23505"


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    # No pool_pre_ping: on asyncpg it costs three round trips (BEGIN, ping, ROLLBACK) at every
    # checkout. A connection a restart killed fails its first statement instead; SQLAlchemy
    # then invalidates the whole pool, and that one failure is a store outage the consumers
    # retry in place and HTTP answers with a 503 (``is_unavailable``). The asyncpg dialect
    # prepares each statement once per connection and reuses it (its statement cache).
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    tracing.instrument_engine(engine)
    return engine


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain libpq DSN, for asyncpg connections we hold ourselves."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as conn:
        yield conn


@dataclass(frozen=True)
class Migration:
    """One schema step of one component; statements run in order inside one transaction."""

    component: str
    version: int
    statements: tuple[str, ...]


async def migrate(engine: AsyncEngine, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply what is not applied yet; returns what was applied. Safe from several starters."""
    applied_now: list[Migration] = []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        await conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component text NOT NULL, version integer NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (component, version))"
        )
        rows = await conn.execute(text("SELECT component, version FROM schema_migrations"))
        done = {(r.component, r.version) for r in rows}
        for migration in migrations:
            if (migration.component, migration.version) in done:
                continue
            for statement in migration.statements:
                await conn.exec_driver_sql(statement)
            await conn.execute(
                text("INSERT INTO schema_migrations (component, version) VALUES (:c, :v)"),
                {"c": migration.component, "v": migration.version},
            )
            applied_now.append(migration)
    return applied_now
