"""The orchestrated saga's state machine, without I/O: each path from Started to Completed
or Compensated, per-step timeouts, late replies, and compensations that never give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from orchestrator.domain import (
    Decision,
    OrderTerms,
    Outcome,
    Saga,
    SagaState,
    Step,
    StepStatus,
    StepTimeouts,
    on_reply,
    on_timeout,
    start,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUTS = StepTimeouts(reserve_stock_s=5, charge_payment_s=7, compensation_s=3)
TERMS = OrderTerms("o-1", "u-1", (("sku-a", 2),), Decimal("9.98"))


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def statuses(*decisions: Decision) -> list[tuple[str, StepStatus]]:
    return [(r.step, r.status) for d in decisions for r in d.records]


def test_the_happy_path_reserves_charges_and_completes() -> None:
    started = start(TERMS, T0, TIMEOUTS)
    assert started.saga.state is SagaState.STARTED
    assert (started.send, started.saga.deadline_at) == (Step.RESERVE_STOCK, later(5))
    reserved = on_reply(started.saga, Step.RESERVE_STOCK, True, None, later(1), TIMEOUTS)
    assert reserved.saga.state is SagaState.STOCK_RESERVED
    assert (reserved.send, reserved.saga.deadline_at) == (Step.CHARGE_PAYMENT, later(8))
    charged = on_reply(reserved.saga, Step.CHARGE_PAYMENT, True, None, later(2), TIMEOUTS)
    assert charged.saga.state is SagaState.COMPLETED and charged.saga.ended
    assert charged.states == (SagaState.PAYMENT_PROCESSED, SagaState.COMPLETED)
    assert (charged.outcome, charged.send, charged.saga.awaiting) == (
        Outcome.COMPLETED,
        None,
        None,
    )
    assert statuses(started, reserved, charged) == [
        ("ReserveStock", StepStatus.SENT),
        ("ReserveStock", StepStatus.SUCCEEDED),
        ("ChargePayment", StepStatus.SENT),
        ("ChargePayment", StepStatus.SUCCEEDED),
    ]


def test_no_stock_compensates_nothing_and_says_why() -> None:
    started = start(TERMS, T0, TIMEOUTS)
    failed = on_reply(started.saga, Step.RESERVE_STOCK, False, "insufficient_stock", T0, TIMEOUTS)
    assert failed.saga.state is SagaState.COMPENSATED
    assert failed.states == (SagaState.COMPENSATING, SagaState.COMPENSATED)
    assert (failed.outcome, failed.send) == (Outcome.COMPENSATED, None)
    assert failed.saga.reason == "stock_unavailable: insufficient_stock"


def test_a_failed_payment_releases_the_stock_then_ends_compensated() -> None:
    reserved = on_reply(
        start(TERMS, T0, TIMEOUTS).saga, Step.RESERVE_STOCK, True, None, T0, TIMEOUTS
    )
    failed = on_reply(
        reserved.saga, Step.CHARGE_PAYMENT, False, "insufficient_funds", later(1), TIMEOUTS
    )
    assert failed.saga.state is SagaState.COMPENSATING
    assert (failed.send, failed.outcome) == (Step.RELEASE_STOCK, None)
    assert failed.saga.deadline_at == later(4)
    released = on_reply(failed.saga, Step.RELEASE_STOCK, True, None, later(2), TIMEOUTS)
    assert released.saga.state is SagaState.COMPENSATED
    assert released.outcome is Outcome.COMPENSATED
    assert released.saga.reason == "payment_failed: insufficient_funds"


def test_a_reservation_that_times_out_is_released_in_case_it_lands_late() -> None:
    started = start(TERMS, T0, TIMEOUTS)
    assert on_timeout(started.saga, later(4.9), TIMEOUTS) is None
    timed_out = on_timeout(started.saga, later(5), TIMEOUTS)
    assert timed_out is not None
    assert timed_out.saga.state is SagaState.COMPENSATING
    assert timed_out.send is Step.RELEASE_STOCK
    assert timed_out.saga.reason == "step_timeout: ReserveStock"
    # The reservation's reply arrives after all: recorded, and the release goes on.
    late = on_reply(timed_out.saga, Step.RESERVE_STOCK, True, None, later(6), TIMEOUTS)
    assert late.saga == timed_out.saga and late.send is None
    assert statuses(late) == [("ReserveStock", StepStatus.LATE)]


def test_a_charge_that_times_out_is_refunded_then_the_stock_released() -> None:
    reserved = on_reply(
        start(TERMS, T0, TIMEOUTS).saga, Step.RESERVE_STOCK, True, None, T0, TIMEOUTS
    )
    timed_out = on_timeout(reserved.saga, later(7), TIMEOUTS)
    assert timed_out is not None and timed_out.send is Step.REFUND_PAYMENT
    refunded = on_reply(timed_out.saga, Step.REFUND_PAYMENT, True, None, later(8), TIMEOUTS)
    assert (refunded.send, refunded.saga.state) == (Step.RELEASE_STOCK, SagaState.COMPENSATING)
    released = on_reply(refunded.saga, Step.RELEASE_STOCK, True, None, later(9), TIMEOUTS)
    assert released.outcome is Outcome.COMPENSATED
    assert released.saga.reason == "step_timeout: ChargePayment"


def test_a_compensation_that_times_out_is_sent_again_with_a_longer_timeout() -> None:
    started = start(TERMS, T0, TIMEOUTS)
    compensating = on_timeout(started.saga, later(5), TIMEOUTS)
    assert compensating is not None
    saga: Saga = compensating.saga
    waits = []
    for attempt in range(2, 8):
        assert saga.deadline_at is not None
        resent = on_timeout(saga, saga.deadline_at, TIMEOUTS)
        assert resent is not None
        assert (resent.send, resent.attempt) == (Step.RELEASE_STOCK, attempt)
        assert resent.saga.state is SagaState.COMPENSATING
        assert resent.saga.deadline_at is not None
        waits.append((resent.saga.deadline_at - saga.deadline_at).total_seconds())
        saga = resent.saga
    assert waits == [6, 12, 24, 48, 96, 120]
    # Any attempt's reply ends it.
    done = on_reply(saga, Step.RELEASE_STOCK, True, None, later(500), TIMEOUTS)
    assert done.outcome is Outcome.COMPENSATED


def test_an_ended_saga_ignores_everything_but_records_it() -> None:
    failed = on_reply(
        start(TERMS, T0, TIMEOUTS).saga,
        Step.RESERVE_STOCK,
        False,
        "insufficient_stock",
        T0,
        TIMEOUTS,
    )
    assert on_timeout(failed.saga, later(1000), TIMEOUTS) is None
    again = on_reply(failed.saga, Step.RESERVE_STOCK, True, None, later(1), TIMEOUTS)
    assert again.saga == failed.saga and again.outcome is None
    assert statuses(again) == [("ReserveStock", StepStatus.LATE)]


@pytest.mark.parametrize("step", [Step.CHARGE_PAYMENT, Step.RELEASE_STOCK, Step.REFUND_PAYMENT])
def test_a_reply_to_a_step_not_yet_sent_changes_nothing(step: Step) -> None:
    started = start(TERMS, T0, TIMEOUTS)
    decision = on_reply(started.saga, step, True, None, later(1), TIMEOUTS)
    assert decision.saga == started.saga and decision.send is None


def test_a_refused_compensation_waits_for_its_timeout_to_be_sent_again() -> None:
    compensating = on_timeout(start(TERMS, T0, TIMEOUTS).saga, later(5), TIMEOUTS)
    assert compensating is not None
    refused = on_reply(compensating.saga, Step.RELEASE_STOCK, False, "busy", later(6), TIMEOUTS)
    assert refused.saga == compensating.saga and refused.send is None
    assert statuses(refused) == [("ReleaseStock", StepStatus.FAILED)]
