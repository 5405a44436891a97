"""The PostgreSQL unit of work: one connection, one transaction, the service's store adapter
over it. Rolled back unless committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polysaga.unit_of_work import UnitNotOpenError

S = TypeVar("S")

# Builds the service's store adapter over a connection inside an open transaction.
StoreAdapter = Callable[[AsyncConnection], S]


class PostgresUnitOfWork(Generic[S]):
    def __init__(self, engine: AsyncEngine, adapter: StoreAdapter[S]) -> None:
        self._engine = engine
        self._adapter = adapter
        self._conn: AsyncConnection | None = None
        self._store: S | None = None

    @property
    def store(self) -> S:
        if self._store is None:
            raise UnitNotOpenError("the store is used outside its unit of work")
        return self._store

    @property
    def connection(self) -> AsyncConnection:
        """For the runtime's own rows in the same transaction (inbox, outbox)."""
        if self._conn is None:
            raise UnitNotOpenError("the connection is used outside its unit of work")
        return self._conn

    async def __aenter__(self) -> Self:
        conn = await self._engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn, self._store = conn, self._adapter(conn)
        return self

    async def commit(self) -> None:
        await self.connection.commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        conn, self._conn, self._store = self.connection, None, None
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()
