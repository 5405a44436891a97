"""One order's step done at most once and undone at most once under the order's lock, and an
undo that arrives first leaves a tombstone the late step respects (``polysaga.order_step``),
on an in-memory store that records what was asked of it in order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from polysaga.order_step import decision_of, to_undo


class Status(StrEnum):
    DONE = "DONE"
    FAILED = "FAILED"
    UNDONE = "UNDONE"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Record:
    order_id: str
    status: Status


class Store:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.calls: list[str] = []

    async def lock_order(self, order_id: str) -> None:
        self.calls.append(f"lock {order_id}")

    async def record_of(self, order_id: str) -> Record | None:
        self.calls.append(f"read {order_id}")
        return self.records.get(order_id)

    async def tombstone(self, order_id: str) -> None:
        self.calls.append(f"tombstone {order_id}")
        self.records[order_id] = Record(order_id, Status.CANCELLED)


async def _undo(store: Store, order_id: str = "o1") -> Record | None:
    return await to_undo(
        store,
        order_id,
        store.record_of,
        done=Status.DONE,
        leave_tombstone=lambda: store.tombstone(order_id),
    )


async def test_a_step_runs_once_the_lock_is_held_and_only_while_undecided() -> None:
    store = Store()

    assert await decision_of(store, "o1", store.record_of) is None
    store.records["o1"] = Record("o1", Status.DONE)
    assert await decision_of(store, "o1", store.record_of) == Record("o1", Status.DONE)

    assert store.calls == ["lock o1", "read o1", "lock o1", "read o1"]


async def test_an_undo_first_leaves_a_tombstone_and_the_late_step_does_nothing() -> None:
    store = Store()

    assert await _undo(store) is None
    assert store.records["o1"].status is Status.CANCELLED
    late = await decision_of(store, "o1", store.record_of)
    assert late == Record("o1", Status.CANCELLED)  # the late step finds the order decided
    assert await _undo(store) is None  # a second cancel: no second tombstone

    assert store.calls == [
        *("lock o1", "read o1", "tombstone o1"),
        *("lock o1", "read o1"),
        *("lock o1", "read o1"),
    ]


async def test_a_done_step_is_undone_once() -> None:
    store = Store()
    store.records["o1"] = Record("o1", Status.DONE)

    first = await _undo(store)
    assert first == Record("o1", Status.DONE)
    store.records["o1"] = Record("o1", Status.UNDONE)  # what the caller records after undoing

    assert await _undo(store) is None
    assert "tombstone o1" not in store.calls


async def test_a_failed_step_has_nothing_to_undo() -> None:
    store = Store()
    store.records["o1"] = Record("o1", Status.FAILED)

    assert await _undo(store) is None
    assert store.records["o1"].status is Status.FAILED


async def test_orders_are_decided_apart() -> None:
    store = Store()
    await _undo(store, "o1")

    assert await decision_of(store, "o2", store.record_of) is None
    assert "o2" not in store.records
