"""The unit of work: one atomic change to a service's store. A command opens one, works
through its ``store`` (the port the service owns) and calls ``commit()``; leaving the block
any other way (an exception, a return before commit) rolls everything back, so commit is
the only way out. An event is handled inside the unit the consumer opens for it (with its
inbox record and the events it causes), which the consumer commits; handlers never begin
or commit anything themselves, so a batch of events can share one unit.

The application layer names only this Protocol and its own store port; the runtime gives
it a PostgreSQL or MongoDB unit (``polysaga.persistence.unit_of_work``,
``polysaga.mongo.unit_of_work``), unit tests a fake.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, TypeVar

Store_co = TypeVar("Store_co", covariant=True)


class UnitOfWork(Protocol[Store_co]):
    @property
    def store(self) -> Store_co:
        """The service's store, inside this unit (only between enter and exit)."""
        ...

    async def commit(self) -> None:
        """Make everything done through ``store`` durable, at once."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...


class UnitNotOpenError(RuntimeError):
    """The store was used outside its unit of work."""


class RetryableConflict(Exception):
    """A unit of work lost a race (optimistic concurrency, deadlock, serialization) and may
    simply be run again from the start, on fresh state."""
