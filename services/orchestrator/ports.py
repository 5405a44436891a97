"""What the orchestrator's application needs from its store, as the service owns it: one
saga per order (state, awaited step, its timeout), its step history, the trace context of
the request that placed the order, and the outbox the commands and outcomes leave through.
``orchestrator.adapters`` implements it on PostgreSQL, the unit tests in memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orchestrator.domain import Saga, StepRecord
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload


@dataclass(frozen=True)
class HistoryEntry:
    step: str
    status: str
    at: datetime
    detail: str | None


@dataclass(frozen=True)
class TimedOut:
    """A saga whose awaited step is past its timeout, with the trace it continues."""

    saga: Saga
    trace_context: dict[str, str]


class SagaStore(Protocol):
    async def add(self, saga: Saga, trace_context: dict[str, str]) -> bool:
        """Store a new saga; False (and nothing written) if the order has one already."""
        ...

    async def get(self, order_id: str, *, for_update: bool = False) -> Saga | None: ...

    async def save(self, saga: Saga) -> None:
        """Write back a saga got ``for_update`` (its row is locked until the unit ends)."""
        ...

    async def record(self, order_id: str, records: Sequence[StepRecord]) -> None:
        """Append to the saga's step history, in order."""
        ...

    async def history(self, order_id: str) -> list[HistoryEntry]: ...

    async def timed_out(self, now: datetime, limit: int) -> list[TimedOut]:
        """Sagas whose awaited step is past its deadline, locked (those another instance
        holds are skipped)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Sagas per state."""
        ...

    async def publish(self, messages: Sequence[Envelope[Payload]]) -> None:
        """Send commands and outcomes through the outbox, in this unit of work."""
        ...
