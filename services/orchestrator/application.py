"""The orchestrator's reactions, sweep and queries over its store (``orchestrator.ports``):
an orchestrated OrderPlaced starts a saga, each reply moves it on, and a step past its
timeout turns it. Each decision (``orchestrator.domain``) is carried out in one unit of
work: the saga row and its history are written, and the command it sends or the outcome it
announces goes to the outbox with them. The handler map at the bottom says who reacts to
what."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from orchestrator import domain
from orchestrator.domain import Decision, OrderTerms, Outcome, Saga, Step, StepTimeouts
from orchestrator.ports import HistoryEntry, SagaStore
from polysaga import metrics, tracing
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.payloads import Payload
from polysaga.events.saga_style import orchestrated
from polysaga.money import format_money, parse_money
from polysaga.unit_of_work import UnitOfWork

SagaUnit = UnitOfWork[SagaStore]

log = logging.getLogger(__name__)


class NoSagaError(LookupError):
    """The orchestrator runs no saga for this order."""


@dataclass(frozen=True)
class SagaView:
    saga: Saga
    history: list[HistoryEntry]


# --- reactions ---------------------------------------------------------------------------


async def on_order_placed(
    event: Envelope[P.OrderPlaced], sagas: SagaStore, now: datetime, timeouts: StepTimeouts
) -> list[Envelope[Payload]]:
    placed = event.data
    if not orchestrated(placed):
        return []  # a choreographed order: the participants run it among themselves
    terms = OrderTerms(
        order_id=str(placed.order_id),
        user_id=placed.user_id,
        items=tuple((line.sku, line.quantity) for line in placed.items),
        total=parse_money(placed.total),
    )
    decision = domain.start(terms, now, timeouts)
    if not await sagas.add(decision.saga, event.trace_headers):
        return []  # started already (the same order placed again under a new event id)
    await sagas.record(terms.order_id, decision.records)
    return _messages(decision, event.trace_headers)


async def on_reply(
    event: Envelope[P.SagaReply], sagas: SagaStore, now: datetime, timeouts: StepTimeouts
) -> list[Envelope[Payload]]:
    step = Step(event.name.removesuffix("Reply"))
    reply = event.data
    order_id = str(reply.order_id)
    saga = await sagas.get(order_id, for_update=True)
    if saga is None:
        log.warning("%s for order %s, which has no saga here; ignored", event.name, order_id)
        return []
    decision = domain.on_reply(saga, step, reply.succeeded, reply.reason, now, timeouts)
    return await _carry_out(sagas, decision, event.trace_headers)


# --- the timeout sweep and queries --------------------------------------------------------


async def sweep_timeouts(
    uow: SagaUnit, now: datetime, timeouts: StepTimeouts, limit: int = 100
) -> int:
    """Turn every saga whose awaited step has run out of time; how many messages that sent.
    No message starts this, so each saga's work continues the trace of the request that
    placed its order."""
    sent = 0
    async with uow:
        sagas = uow.store
        for timed_out in await sagas.timed_out(now, limit):
            saga = timed_out.saga
            decision = domain.on_timeout(saga, now, timeouts)
            if decision is None:
                continue
            assert saga.awaiting is not None
            metrics.SAGA_STEP_TIMEOUTS.labels(step=saga.awaiting.value).inc()
            with tracing.continued(
                timed_out.trace_context, "saga step_timeout", order_id=saga.order_id
            ):
                messages = await _carry_out(sagas, decision, {})
                await sagas.publish(messages)
            sent += len(messages)
        await uow.commit()
    return sent


async def saga_of(uow: SagaUnit, order_id: str) -> SagaView:
    async with uow:
        saga = await uow.store.get(order_id)
        history = await uow.store.history(order_id) if saga else []
    if saga is None:
        raise NoSagaError(order_id)
    return SagaView(saga, history)


async def counts_by_state(uow: SagaUnit) -> dict[str, int]:
    async with uow:
        return await uow.store.counts()


# --- carrying a decision out -------------------------------------------------------------


async def _carry_out(
    sagas: SagaStore, decision: Decision, trace_headers: dict[str, str]
) -> list[Envelope[Payload]]:
    if decision.states or decision.send:
        await sagas.save(decision.saga)
    await sagas.record(decision.saga.order_id, decision.records)
    return _messages(decision, trace_headers)


def _messages(decision: Decision, trace_headers: dict[str, str]) -> list[Envelope[Payload]]:
    """The command the decision sends and the outcome it announces."""
    saga = decision.saga
    order_id = UUID(saga.order_id)
    bodies: list[Payload] = []
    if decision.send is not None:
        bodies.append(_command(decision.send, saga.terms))
    if decision.outcome is Outcome.COMPLETED:
        bodies.append(P.SagaCompleted(order_id=order_id))
    elif decision.outcome is Outcome.COMPENSATED:
        bodies.append(P.SagaCompensated(order_id=order_id, reason=saga.reason or "compensated"))
    return [new_event(body, trace_headers=trace_headers) for body in bodies]


def _command(step: Step, terms: OrderTerms) -> Payload:
    order_id = UUID(terms.order_id)
    if step is Step.RESERVE_STOCK:
        return P.ReserveStock(
            order_id=order_id,
            user_id=terms.user_id,
            items=[P.StockLine(sku=sku, quantity=q) for sku, q in terms.items],
            total=format_money(terms.total),
        )
    if step is Step.CHARGE_PAYMENT:
        return P.ChargePayment(
            order_id=order_id, user_id=terms.user_id, amount=format_money(terms.total)
        )
    if step is Step.REFUND_PAYMENT:
        return P.RefundPayment(order_id=order_id, user_id=terms.user_id)
    return P.ReleaseStock(order_id=order_id)  # inventory knows what it holds for the order


Reaction = Callable[
    [Envelope[Any], SagaStore, datetime, StepTimeouts], Awaitable[list[Envelope[Payload]]]
]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "ReserveStockReply": on_reply,
    "ChargePaymentReply": on_reply,
    "RefundPaymentReply": on_reply,
    "ReleaseStockReply": on_reply,
}
