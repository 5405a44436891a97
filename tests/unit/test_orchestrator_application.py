"""The orchestrator's reactions against sagas kept in memory: what each message starts,
sends and records, and that a saga is started once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from orchestrator.application import (
    EVENT_HANDLERS,
    Sagas,
    on_order_placed,
    on_reply,
    sweep_timeouts,
)
from orchestrator.domain import Saga, SagaState, StepRecord, StepTimeouts
from polysaga.events.envelope import Envelope, new_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUTS = StepTimeouts(reserve_stock_s=5, charge_payment_s=5, compensation_s=5)
ORDER = "6f1c1a52-3f5e-4d8e-9a57-1f7e0f2b8c11"
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


class FakeSagas:
    def __init__(self) -> None:
        self.sagas: dict[str, Saga] = {}
        self.history: dict[str, list[StepRecord]] = {}
        self.traces: dict[str, dict[str, str]] = {}

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

    async def record(self, order_id: str, records: tuple[StepRecord, ...]) -> None:
        self.history.setdefault(order_id, []).extend(records)

    async def timed_out(self, now: datetime, limit: int) -> list[tuple[Saga, dict[str, str]]]:
        due = [s for s in self.sagas.values() if s.deadline_at is not None and s.deadline_at <= now]
        return [(s, self.traces[s.order_id]) for s in due][:limit]


def placed(saga: str) -> Envelope:
    data = {
        "order_id": ORDER,
        "user_id": "u-1",
        "items": [{"sku": "A", "quantity": 2, "unit_price": "1.50"}],
        "total": "3.00",
        "placed_at": NOW.isoformat(),
        "deadline_at": NOW.isoformat(),
        "saga": saga,
    }
    return new_event("OrderPlaced", ORDER, data, trace_headers=TRACE)


def reply(command: Envelope, succeeded: bool, reason: str | None = None) -> Envelope:
    body = {
        "order_id": ORDER,
        "command_id": command.event_id,
        "succeeded": succeeded,
        "reason": reason,
    }
    return new_event(f"{command.name}Reply", ORDER, body)


def steps(fake: FakeSagas) -> list[tuple[str, str]]:
    return [(r.step, r.status.value) for r in fake.history[ORDER]]


def test_handler_map() -> None:
    assert set(EVENT_HANDLERS) == {
        "OrderPlaced",
        "ReserveStockReply",
        "ChargePaymentReply",
        "RefundPaymentReply",
        "ReleaseStockReply",
    }
    assert all(EVENT_HANDLERS[n] is on_reply for n in EVENT_HANDLERS if n != "OrderPlaced")


async def test_a_choreographed_order_starts_no_saga() -> None:
    fake = FakeSagas()
    assert await on_order_placed(placed("choreography"), cast(Sagas, fake), NOW, TIMEOUTS) == []
    assert fake.sagas == {}


async def test_an_orchestrated_order_runs_its_saga_through_commands_and_replies() -> None:
    fake = FakeSagas()
    sagas = cast(Sagas, fake)
    (reserve,) = await on_order_placed(placed("orchestration"), sagas, NOW, TIMEOUTS)
    assert reserve.name == "ReserveStock" and reserve.subject == "sagas.commands.ReserveStock"
    assert reserve.data == {
        "order_id": ORDER,
        "user_id": "u-1",
        "items": [{"sku": "A", "quantity": 2}],
        "total": "3.00",
    }
    assert reserve.trace_headers == TRACE and fake.traces[ORDER] == TRACE
    # The same order again (a re-publication): one saga, nothing sent twice.
    assert await on_order_placed(placed("orchestration"), sagas, NOW, TIMEOUTS) == []
    (charge,) = await on_reply(reply(reserve, True), sagas, NOW, TIMEOUTS)
    assert charge.name == "ChargePayment"
    assert charge.data == {"order_id": ORDER, "user_id": "u-1", "amount": "3.00"}
    (completed,) = await on_reply(reply(charge, True), sagas, NOW, TIMEOUTS)
    assert completed.name == "SagaCompleted" and completed.subject == "sagas.events.SagaCompleted"
    assert fake.sagas[ORDER].state is SagaState.COMPLETED
    assert steps(fake) == [
        ("ReserveStock", "sent"),
        ("ReserveStock", "succeeded"),
        ("ChargePayment", "sent"),
        ("ChargePayment", "succeeded"),
    ]


async def test_a_step_past_its_timeout_is_compensated_by_the_sweep() -> None:
    fake = FakeSagas()
    sagas = cast(Sagas, fake)
    (reserve,) = await on_order_placed(placed("orchestration"), sagas, NOW, TIMEOUTS)
    assert await sweep_timeouts(sagas, NOW + timedelta(seconds=4), TIMEOUTS) == []
    (release,) = await sweep_timeouts(sagas, NOW + timedelta(seconds=5), TIMEOUTS)
    assert release.name == "ReleaseStock" and release.data == {"order_id": ORDER}
    # The reservation lands late: recorded, and the release stands.
    assert await on_reply(reply(reserve, True), sagas, NOW, TIMEOUTS) == []
    (outcome,) = await on_reply(reply(release, True), sagas, NOW, TIMEOUTS)
    assert outcome.name == "SagaCompensated"
    assert outcome.data == {"order_id": ORDER, "reason": "step_timeout: ReserveStock"}
    assert steps(fake)[-3:] == [
        ("ReleaseStock", "sent"),
        ("ReserveStock", "late"),
        ("ReleaseStock", "succeeded"),
    ]
