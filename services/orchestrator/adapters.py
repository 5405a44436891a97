"""The orchestrator's PostgreSQL adapter (``orchestrator.ports.SagaStore``): one row per
saga (its state, the step it waits for and when that step times out), its step history, and
the trace context of the request that placed the order. Every change happens inside the
caller's transaction, with the saga's row locked, together with the inbox record of the
message that caused it and the outbox rows of the commands it sends: a crash at any point
resumes from the last commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.domain import OrderTerms, Saga, SagaState, Step, StepRecord
from orchestrator.ports import HistoryEntry, TimedOut
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.persistence import outbox
from polysaga.persistence.database import Migration

MIGRATIONS = (
    Migration(
        "orchestrator",
        1,
        (
            "CREATE TABLE sagas ("
            " order_id uuid PRIMARY KEY, user_id text NOT NULL, items jsonb NOT NULL,"
            " total numeric(14, 2) NOT NULL, state text NOT NULL, awaiting text,"
            " attempt integer NOT NULL DEFAULT 0, deadline_at timestamptz,"
            " pending_compensations text[] NOT NULL DEFAULT '{}', reason text,"
            " trace_context jsonb, started_at timestamptz NOT NULL,"
            " updated_at timestamptz NOT NULL, version integer NOT NULL)",
            # The timeout sweep reads only the sagas waiting for a step.
            "CREATE INDEX sagas_step_deadline ON sagas (deadline_at) WHERE deadline_at IS NOT NULL",
            "CREATE TABLE saga_steps ("
            " order_id uuid NOT NULL REFERENCES sagas (order_id), seq integer NOT NULL,"
            " step text NOT NULL, status text NOT NULL, at timestamptz NOT NULL, detail text,"
            " PRIMARY KEY (order_id, seq))",
        ),
    ),
)

_COLUMNS = (
    "order_id::text AS order_id, user_id, items::text AS items, total, state, awaiting,"
    " attempt, deadline_at, pending_compensations, reason, started_at, updated_at, version"
)


class PostgresSagaStore:
    """The orchestrator's sagas on one connection, inside the transaction of the unit of
    work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, saga: Saga, trace_context: dict[str, str]) -> bool:
        """Store a new saga; False (and nothing written) if the order has one already."""
        result = await self._conn.execute(
            text(
                "INSERT INTO sagas (order_id, user_id, items, total, state, awaiting, attempt,"
                " deadline_at, pending_compensations, reason, trace_context, started_at,"
                " updated_at, version) VALUES (:order_id, :user_id, CAST(:items AS jsonb),"
                " :total, :state, :awaiting, :attempt, :deadline_at, :pending, :reason,"
                " CAST(:trace AS jsonb), :started_at, :updated_at, 1)"
                " ON CONFLICT (order_id) DO NOTHING"
            ),
            {
                **_row(saga),
                "user_id": saga.terms.user_id,
                "items": msgspec.json.encode([list(i) for i in saga.terms.items]).decode(),
                "total": saga.terms.total,
                "trace": msgspec.json.encode(trace_context).decode() if trace_context else None,
                "started_at": saga.started_at,
            },
        )
        return result.rowcount == 1

    async def get(self, order_id: str, *, for_update: bool = False) -> Saga | None:
        lock = " FOR UPDATE" if for_update else ""
        row = (
            await self._conn.execute(
                text(f"SELECT {_COLUMNS} FROM sagas WHERE order_id = :id{lock}"), {"id": order_id}
            )
        ).first()
        return None if row is None else _saga(row)

    async def save(self, saga: Saga) -> None:
        """Write a saga loaded with ``for_update`` back (its row is locked: no one else moved
        it in between)."""
        await self._conn.execute(
            text(
                "UPDATE sagas SET state = :state, awaiting = :awaiting, attempt = :attempt,"
                " deadline_at = :deadline_at, pending_compensations = :pending,"
                " reason = :reason, updated_at = :updated_at, version = version + 1"
                " WHERE order_id = :order_id"
            ),
            _row(saga),
        )

    async def record(self, order_id: str, records: Sequence[StepRecord]) -> None:
        if not records:
            return
        await self._conn.execute(
            text(
                "INSERT INTO saga_steps (order_id, seq, step, status, at, detail)"
                " SELECT :order_id, coalesce((SELECT max(seq) FROM saga_steps"
                " WHERE order_id = :order_id), 0) + r.n, r.step, r.status, r.at, r.detail"
                " FROM unnest(CAST(:steps AS text[]), CAST(:statuses AS text[]),"
                " CAST(:ats AS timestamptz[]), CAST(:details AS text[]))"
                " WITH ORDINALITY AS r(step, status, at, detail, n)"
            ),
            {
                "order_id": order_id,
                "steps": [r.step for r in records],
                "statuses": [r.status.value for r in records],
                "ats": [r.at for r in records],
                "details": [r.detail for r in records],
            },
        )

    async def history(self, order_id: str) -> list[HistoryEntry]:
        rows = await self._conn.execute(
            text(
                "SELECT step, status, at, detail FROM saga_steps WHERE order_id = :id ORDER BY seq"
            ),
            {"id": order_id},
        )
        return [HistoryEntry(r.step, r.status, r.at, r.detail) for r in rows]

    async def timed_out(self, now: datetime, limit: int) -> list[TimedOut]:
        """Sagas whose awaited step is past its deadline, locked (others' skipped, so two
        orchestrator instances share the work), with their stored trace context."""
        rows = await self._conn.execute(
            text(
                f"SELECT {_COLUMNS}, trace_context::text AS trace_context FROM sagas"
                " WHERE deadline_at IS NOT NULL AND deadline_at <= :now"
                " ORDER BY deadline_at LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"now": now, "limit": limit},
        )
        return [
            TimedOut(_saga(r), msgspec.json.decode(r.trace_context) if r.trace_context else {})
            for r in rows
        ]

    async def counts(self) -> dict[str, int]:
        rows = await self._conn.execute(
            text("SELECT state, count(*) AS n FROM sagas GROUP BY state")
        )
        return {r.state: int(r.n) for r in rows}

    async def publish(self, messages: Sequence[Envelope[Payload]]) -> None:
        await outbox.append(self._conn, messages)


def _row(saga: Saga) -> dict[str, Any]:
    return {
        "order_id": saga.order_id,
        "state": saga.state.value,
        "awaiting": saga.awaiting.value if saga.awaiting else None,
        "attempt": saga.attempt,
        "deadline_at": saga.deadline_at,
        "pending": [s.value for s in saga.pending_compensations],
        "reason": saga.reason,
        "updated_at": saga.updated_at,
    }


def _saga(row: Row[Any]) -> Saga:
    items = tuple((str(sku), int(qty)) for sku, qty in msgspec.json.decode(row.items))
    return Saga(
        terms=OrderTerms(row.order_id, row.user_id, items, Decimal(row.total)),
        state=SagaState(row.state),
        started_at=row.started_at,
        updated_at=row.updated_at,
        awaiting=Step(row.awaiting) if row.awaiting else None,
        attempt=row.attempt,
        deadline_at=row.deadline_at,
        pending_compensations=tuple(Step(s) for s in row.pending_compensations),
        reason=row.reason,
        version=row.version,
    )
