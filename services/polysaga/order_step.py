"""One order's step at a saga participant (inventory's reservation, payment's charge): done at
most once and undone at most once, each under the order's lock, so the order's events (or
commands) handled at once by two instances take turns. An undo that arrives before the step
(the order was cancelled first) finds nothing to undo and leaves a tombstone: any record of
the order, whatever its status, means "decided", and the late step does nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar


class OrderLock(Protocol):
    async def lock_order(self, order_id: str) -> None:
        """Serialise everything done for one order until this unit of work ends."""
        ...


class StepRecord(Protocol):
    """The participant's record of an order's step; ``status`` is the service's own enum."""

    @property
    def status(self) -> object: ...


RecordT = TypeVar("RecordT", bound=StepRecord)


async def decision_of(
    store: OrderLock, order_id: str, read: Callable[[str], Awaitable[RecordT | None]]
) -> RecordT | None:
    """Lock the order and read what was decided for it. None: nothing yet, the step may run
    now. A record (the step done or failed, or the tombstone of an undo that came first):
    the decision stands, and the step must not run again."""
    await store.lock_order(order_id)
    return await read(order_id)


async def to_undo(
    store: OrderLock,
    order_id: str,
    read: Callable[[str], Awaitable[RecordT | None]],
    *,
    done: object,
    leave_tombstone: Callable[[], Awaitable[object]],
) -> RecordT | None:
    """Lock the order; its record if its step is ``done`` and must be undone now, else None:
    already undone, failed, or not done yet (then ``leave_tombstone`` runs, so a late step
    finds the order decided)."""
    existing = await decision_of(store, order_id, read)
    if existing is None:
        await leave_tombstone()
        return None
    return existing if existing.status == done else None
