"""The MongoDB unit of work. Without multi-document transactions every write of a Mongo
store is one atomic single-document update (state and its events together, see
``polysaga.mongo.outbox``), so nothing waits for the commit but the outbox relay: commit
wakes it, so what the writes staged is published at once."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from polysaga.mongo.client import MongoDatabase
from polysaga.unit_of_work import UnitNotOpenError

S = TypeVar("S")


class MongoUnitOfWork(Generic[S]):
    def __init__(
        self,
        db: MongoDatabase,
        adapter: Callable[[MongoDatabase], S],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._adapter = adapter
        self._on_commit = on_commit
        self._store: S | None = None

    @property
    def store(self) -> S:
        if self._store is None:
            raise UnitNotOpenError("the store is used outside its unit of work")
        return self._store

    async def __aenter__(self) -> Self:
        self._store = self._adapter(self._db)
        return self

    async def commit(self) -> None:
        if self._store is None:
            raise UnitNotOpenError("commit outside the unit of work")
        self._on_commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store = None
