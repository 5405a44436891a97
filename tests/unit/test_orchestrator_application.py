"""The orchestrator's reactions against sagas kept in memory: what each message starts,
sends and records, and that a saga is started once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from event_samples import order_lines, order_placed
from fakes.orchestrator import FakeSagaStore, saga_unit
from orchestrator.application import (
    EVENT_HANDLERS,
    NoSagaError,
    on_order_placed,
    on_reply,
    saga_of,
    sweep_timeouts,
)
from orchestrator.domain import SagaState, StepTimeouts
from polysaga.events import payloads as P
from polysaga.events.declaration import spec
from polysaga.events.envelope import Envelope, new_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUTS = StepTimeouts(reserve_stock_s=5, charge_payment_s=5, compensation_s=5)
ORDER = UUID("6f1c1a52-3f5e-4d8e-9a57-1f7e0f2b8c11")
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def placed(saga: P.SagaStyleName) -> Envelope[P.OrderPlaced]:
    body = order_placed(
        order_id=ORDER,
        user_id="u-1",
        items=order_lines(("A", 2, "1.50")),
        total="3.00",
        saga=saga,
    )
    return new_event(body, trace_headers=TRACE)


def reply(command: Envelope[Any], succeeded: bool, reason: str | None = None) -> Envelope[Any]:
    kind = spec(f"{command.name}Reply").payload
    body = kind(
        order_id=ORDER, command_id=UUID(command.event_id), succeeded=succeeded, reason=reason
    )
    return new_event(body)


def steps(fake: FakeSagaStore) -> list[tuple[str, str]]:
    return [(r.step, r.status.value) for r in fake.steps[str(ORDER)]]


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
    fake = FakeSagaStore()
    assert await on_order_placed(placed("choreography"), fake, NOW, TIMEOUTS) == []
    assert fake.sagas == {}


async def test_an_orchestrated_order_runs_its_saga_through_commands_and_replies() -> None:
    fake = FakeSagaStore()
    (reserve,) = await on_order_placed(placed("orchestration"), fake, NOW, TIMEOUTS)
    assert reserve.name == "ReserveStock" and reserve.subject == "sagas.commands.ReserveStock"
    assert reserve.data == P.ReserveStock(
        order_id=ORDER,
        user_id="u-1",
        items=[P.StockLine(sku="A", quantity=2)],
        total="3.00",
    )
    assert reserve.trace_headers == TRACE and fake.traces[str(ORDER)] == TRACE
    # The same order again (a re-publication): one saga, nothing sent twice.
    assert await on_order_placed(placed("orchestration"), fake, NOW, TIMEOUTS) == []
    (charge,) = await on_reply(reply(reserve, True), fake, NOW, TIMEOUTS)
    assert charge.data == P.ChargePayment(order_id=ORDER, user_id="u-1", amount="3.00")
    (completed,) = await on_reply(reply(charge, True), fake, NOW, TIMEOUTS)
    assert completed.name == "SagaCompleted" and completed.subject == "sagas.events.SagaCompleted"
    assert fake.sagas[str(ORDER)].state is SagaState.COMPLETED
    assert steps(fake) == [
        ("ReserveStock", "sent"),
        ("ReserveStock", "succeeded"),
        ("ChargePayment", "sent"),
        ("ChargePayment", "succeeded"),
    ]


async def test_a_step_past_its_timeout_is_compensated_by_the_sweep() -> None:
    fake = FakeSagaStore()
    (reserve,) = await on_order_placed(placed("orchestration"), fake, NOW, TIMEOUTS)
    unit = saga_unit(fake)
    assert await sweep_timeouts(unit, NOW + timedelta(seconds=4), TIMEOUTS) == 0
    assert await sweep_timeouts(unit, NOW + timedelta(seconds=5), TIMEOUTS) == 1
    assert unit.commits == 2
    (release,) = fake.published
    assert release.data == P.ReleaseStock(order_id=ORDER)
    # The reservation lands late: recorded, and the release stands.
    assert await on_reply(reply(reserve, True), fake, NOW, TIMEOUTS) == []
    (outcome,) = await on_reply(reply(release, True), fake, NOW, TIMEOUTS)
    assert outcome.data == P.SagaCompensated(order_id=ORDER, reason="step_timeout: ReserveStock")
    assert steps(fake)[-3:] == [
        ("ReleaseStock", "sent"),
        ("ReserveStock", "late"),
        ("ReleaseStock", "succeeded"),
    ]


async def test_a_saga_is_read_with_its_history_and_an_unknown_one_is_an_error() -> None:
    fake = FakeSagaStore()
    await on_order_placed(placed("orchestration"), fake, NOW, TIMEOUTS)
    view = await saga_of(saga_unit(fake), str(ORDER))
    assert view.saga.state is SagaState.STARTED
    assert [(e.step, e.status) for e in view.history] == [("ReserveStock", "sent")]
    with pytest.raises(NoSagaError):
        await saga_of(saga_unit(fake), "00000000-0000-4000-8000-000000000000")
