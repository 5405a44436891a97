"""A unit of work for unit tests: it hands out an in-memory store (a fake of the service's
port) and records whether the code under test committed. Like the real ones, its store is
only usable inside the block, and a block left without commit counts as rolled back."""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self, TypeVar

from polysaga.unit_of_work import UnitNotOpenError

S = TypeVar("S")


class FakeUnitOfWork(Generic[S]):
    def __init__(self, store: S) -> None:
        self._store = store
        self._open = False
        self.commits = 0
        self.rollbacks = 0

    @property
    def store(self) -> S:
        if not self._open:
            raise UnitNotOpenError("the store is used outside its unit of work")
        return self._store

    @property
    def committed(self) -> bool:
        return self.commits > 0

    async def __aenter__(self) -> Self:
        self._open, self._committed_here = True, False
        return self

    async def commit(self) -> None:
        if not self._open:
            raise UnitNotOpenError("commit outside the unit of work")
        self.commits += 1
        self._committed_here = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._committed_here:
            self.rollbacks += 1
        self._open = False
