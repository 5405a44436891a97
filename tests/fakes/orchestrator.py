"""The orchestrator's sagas in memory: one per order, its history in order, the trace it
was started in, and what it published."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from fakes import FakeUnitOfWork
from orchestrator.domain import Saga, StepRecord
from orchestrator.ports import HistoryEntry, SagaStore, TimedOut
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.unit_of_work import UnitOfWork


class FakeSagaStore:
    def __init__(self) -> None:
        self.sagas: dict[str, Saga] = {}
        self.steps: dict[str, list[StepRecord]] = {}
        self.traces: dict[str, dict[str, str]] = {}
        self.published: list[Envelope[Payload]] = []

    async def add(self, saga: Saga, trace_context: dict[str, str]) -> bool:
        if saga.order_id in self.sagas:
            return False
        self.sagas[saga.order_id] = saga
        self.traces[saga.order_id] = trace_context
        return True

    async def get(self, order_id: str, *, for_update: bool = False) -> Saga | None:
        return self.sagas.get(order_id)

    async def save(self, saga: Saga) -> None:
        self.sagas[saga.order_id] = saga

    async def record(self, order_id: str, records: Sequence[StepRecord]) -> None:
        self.steps.setdefault(order_id, []).extend(records)

    async def history(self, order_id: str) -> list[HistoryEntry]:
        return [
            HistoryEntry(r.step, r.status.value, r.at, r.detail)
            for r in self.steps.get(order_id, [])
        ]

    async def timed_out(self, now: datetime, limit: int) -> list[TimedOut]:
        due = [s for s in self.sagas.values() if s.deadline_at is not None and s.deadline_at <= now]
        return [TimedOut(s, self.traces[s.order_id]) for s in due][:limit]

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for saga in self.sagas.values():
            counts[saga.state.value] = counts.get(saga.state.value, 0) + 1
        return counts

    async def publish(self, messages: Sequence[Envelope[Payload]]) -> None:
        self.published.extend(messages)


def saga_unit(store: FakeSagaStore) -> FakeUnitOfWork[FakeSagaStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is a SagaStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeSagaStore], UnitOfWork[SagaStore]] = saga_unit
