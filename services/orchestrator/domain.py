"""The orchestrated saga, free of I/O: its state, its step history, and what it does next
when a participant replies or a step runs out of time.

Forward steps: ReserveStock, then ChargePayment. A failure or a timeout turns the saga to
Compensating, which undoes, in reverse order, every step that did or may have happened (a
timed-out step's outcome is unknown, so it is undone too; the participants make an undo of
something that never happened a tombstone, so a late arrival changes nothing). A compensation
that times out is sent again, with a growing timeout: compensations never give up.

    Started --ReserveStock ok--> StockReserved --ChargePayment ok--> PaymentProcessed
        --> Completed (the order is told to confirm)
    any failure or timeout --> Compensating --last compensation done--> Compensated
        (the order is told to cancel, with the reason)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class SagaState(StrEnum):
    STARTED = "Started"
    STOCK_RESERVED = "StockReserved"
    PAYMENT_PROCESSED = "PaymentProcessed"
    COMPLETED = "Completed"
    COMPENSATING = "Compensating"
    COMPENSATED = "Compensated"


TERMINAL_STATES = frozenset({SagaState.COMPLETED, SagaState.COMPENSATED})


class Step(StrEnum):
    """A command the orchestrator sends and waits for the reply to."""

    RESERVE_STOCK = "ReserveStock"
    CHARGE_PAYMENT = "ChargePayment"
    REFUND_PAYMENT = "RefundPayment"
    RELEASE_STOCK = "ReleaseStock"


COMPENSATIONS = frozenset({Step.REFUND_PAYMENT, Step.RELEASE_STOCK})


class StepStatus(StrEnum):
    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    LATE = "late"  # a reply to a step the saga no longer waits for (it moved on)


class Outcome(StrEnum):
    """What the order is told once the saga has ended."""

    COMPLETED = "completed"
    COMPENSATED = "compensated"


@dataclass(frozen=True)
class StepRecord:
    step: str
    status: StepStatus
    at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class StepTimeouts:
    """Each step's own timeout; a compensation's doubles on every resend, up to the cap."""

    reserve_stock_s: float = 15.0
    charge_payment_s: float = 15.0
    compensation_s: float = 10.0
    compensation_max_s: float = 120.0

    def of(self, step: Step, attempt: int) -> timedelta:
        if step is Step.RESERVE_STOCK:
            return timedelta(seconds=self.reserve_stock_s)
        if step is Step.CHARGE_PAYMENT:
            return timedelta(seconds=self.charge_payment_s)
        grown = self.compensation_s * 2 ** max(0, attempt - 1)
        return timedelta(seconds=min(self.compensation_max_s, grown))


@dataclass(frozen=True)
class OrderTerms:
    """What the saga needs to know of the order to send its commands."""

    order_id: str
    user_id: str
    items: tuple[tuple[str, int], ...]  # (sku, quantity)
    total: Decimal


@dataclass(frozen=True)
class Saga:
    terms: OrderTerms
    state: SagaState
    started_at: datetime
    updated_at: datetime
    awaiting: Step | None = None  # the step whose reply the saga waits for
    attempt: int = 0  # of the awaited step (compensations are resent)
    deadline_at: datetime | None = None  # when the awaited step times out
    pending_compensations: tuple[Step, ...] = ()  # after the awaited one, in order
    reason: str | None = None  # why it compensates
    version: int = 0  # the stored row's version (optimistic concurrency)

    @property
    def order_id(self) -> str:
        return self.terms.order_id

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class Decision:
    """A transition: the saga after it, what it records, the command to send (if any), and
    the outcome to announce (once, when the saga ends)."""

    saga: Saga
    records: tuple[StepRecord, ...] = ()
    send: Step | None = None
    outcome: Outcome | None = None
    # Set when a step is sent: that command's attempt (it makes the command's id).
    attempt: int = 0
    states: tuple[SagaState, ...] = ()  # every state passed through, in order


def start(terms: OrderTerms, now: datetime, timeouts: StepTimeouts) -> Decision:
    saga = Saga(terms=terms, state=SagaState.STARTED, started_at=now, updated_at=now)
    return _send(saga, Step.RESERVE_STOCK, 1, now, timeouts, (), (SagaState.STARTED,))


def on_reply(
    saga: Saga,
    step: Step,
    succeeded: bool,
    reason: str | None,
    now: datetime,
    timeouts: StepTimeouts,
) -> Decision:
    """React to a participant's reply. A reply to a step the saga is not waiting for is only
    recorded (``late``): whatever it did is covered by the compensation already chosen."""
    if saga.ended or saga.awaiting is not step:
        detail = "succeeded" if succeeded else f"failed: {reason}"
        return Decision(saga, (StepRecord(step, StepStatus.LATE, now, detail),))
    if step in COMPENSATIONS:
        if not succeeded:  # a participant never refuses an undo; resend on its timeout
            return Decision(saga, (StepRecord(step, StepStatus.FAILED, now, reason),))
        done = StepRecord(step, StepStatus.SUCCEEDED, now)
        return _next_compensation(saga, now, timeouts, (done,))
    if not succeeded:
        failed = StepRecord(step, StepStatus.FAILED, now, reason)
        if step is Step.RESERVE_STOCK:
            # Nothing was held, so nothing needs undoing.
            return _compensate(saga, f"stock_unavailable: {reason}", (), now, timeouts, failed)
        return _compensate(
            saga, f"payment_failed: {reason}", (Step.RELEASE_STOCK,), now, timeouts, failed
        )
    done = StepRecord(step, StepStatus.SUCCEEDED, now)
    if step is Step.RESERVE_STOCK:
        reserved = replace(saga, state=SagaState.STOCK_RESERVED)
        return _send(
            reserved, Step.CHARGE_PAYMENT, 1, now, timeouts, (done,), (SagaState.STOCK_RESERVED,)
        )
    completed = replace(
        saga, state=SagaState.COMPLETED, awaiting=None, attempt=0, deadline_at=None, updated_at=now
    )
    return Decision(
        completed,
        (done,),
        outcome=Outcome.COMPLETED,
        states=(SagaState.PAYMENT_PROCESSED, SagaState.COMPLETED),
    )


def on_timeout(saga: Saga, now: datetime, timeouts: StepTimeouts) -> Decision | None:
    """The awaited step ran out of time (None if it has not, or the saga is not waiting)."""
    step = saga.awaiting
    if step is None or saga.deadline_at is None or now < saga.deadline_at:
        return None
    timed_out = StepRecord(step, StepStatus.TIMED_OUT, now, f"attempt {saga.attempt}")
    if step in COMPENSATIONS:
        return _send(saga, step, saga.attempt + 1, now, timeouts, (timed_out,), ())
    if step is Step.RESERVE_STOCK:
        undo: tuple[Step, ...] = (Step.RELEASE_STOCK,)
    else:
        undo = (Step.REFUND_PAYMENT, Step.RELEASE_STOCK)
    return _compensate(saga, f"step_timeout: {step.value}", undo, now, timeouts, timed_out)


def _compensate(
    saga: Saga,
    reason: str,
    undo: Sequence[Step],
    now: datetime,
    timeouts: StepTimeouts,
    cause: StepRecord,
) -> Decision:
    compensating = replace(
        saga, state=SagaState.COMPENSATING, reason=reason, pending_compensations=tuple(undo)
    )
    decision = _next_compensation(compensating, now, timeouts, (cause,))
    return replace(decision, states=(SagaState.COMPENSATING, *decision.states))


def _next_compensation(
    saga: Saga, now: datetime, timeouts: StepTimeouts, records: tuple[StepRecord, ...]
) -> Decision:
    if not saga.pending_compensations:
        compensated = replace(
            saga,
            state=SagaState.COMPENSATED,
            awaiting=None,
            attempt=0,
            deadline_at=None,
            updated_at=now,
        )
        return Decision(
            compensated, records, outcome=Outcome.COMPENSATED, states=(SagaState.COMPENSATED,)
        )
    step, *rest = saga.pending_compensations
    return _send(
        replace(saga, pending_compensations=tuple(rest)), step, 1, now, timeouts, records, ()
    )


def _send(
    saga: Saga,
    step: Step,
    attempt: int,
    now: datetime,
    timeouts: StepTimeouts,
    records: tuple[StepRecord, ...],
    states: tuple[SagaState, ...],
) -> Decision:
    waiting = replace(
        saga,
        awaiting=step,
        attempt=attempt,
        deadline_at=now + timeouts.of(step, attempt),
        updated_at=now,
    )
    sent = StepRecord(step, StepStatus.SENT, now, None if attempt == 1 else f"attempt {attempt}")
    return Decision(waiting, (*records, sent), send=step, attempt=attempt, states=states)
