"""The orchestrator's reactions: an orchestrated OrderPlaced starts a saga, each reply moves it
on, and a step past its timeout turns it. Each decision (``orchestrator.domain``) is carried
out in the handler's own transaction: the saga row and its history are written, and the
command it sends or the outcome it announces goes to the outbox with them. The handler map
at the bottom says who reacts to what."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from orchestrator import domain
from orchestrator.domain import Decision, OrderTerms, Outcome, Saga, Step, StepRecord, StepTimeouts
from polysaga import metrics, tracing
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.saga_style import orchestrated
from polysaga.money import format_money, parse_money

log = logging.getLogger(__name__)


class Sagas(Protocol):
    """The port the orchestrator keeps its sagas behind (``adapters.SagaStore``)."""

    async def add(self, saga: Saga, trace_context: dict[str, str]) -> bool: ...
    async def get(self, order_id: str, *, for_update: bool = False) -> Saga | None: ...
    async def save(self, saga: Saga) -> None: ...
    async def record(self, order_id: str, records: tuple[StepRecord, ...]) -> None: ...
    async def timed_out(self, now: datetime, limit: int) -> list[tuple[Saga, dict[str, str]]]: ...


async def on_order_placed(
    event: Envelope, sagas: Sagas, now: datetime, timeouts: StepTimeouts
) -> list[Envelope]:
    if not orchestrated(event.data):
        return []  # a choreographed order: the participants run it among themselves
    d = event.data
    terms = OrderTerms(
        order_id=d["order_id"],
        user_id=d["user_id"],
        items=tuple((str(i["sku"]), int(i["quantity"])) for i in d["items"]),
        total=parse_money(d["total"]),
    )
    decision = domain.start(terms, now, timeouts)
    if not await sagas.add(decision.saga, event.trace_headers):
        return []  # started already (the same order placed again under a new event id)
    await sagas.record(terms.order_id, decision.records)
    return _messages(decision, event.trace_headers)


async def on_reply(
    event: Envelope, sagas: Sagas, now: datetime, timeouts: StepTimeouts
) -> list[Envelope]:
    step = Step(event.name.removesuffix("Reply"))
    order_id = event.data["order_id"]
    saga = await sagas.get(order_id, for_update=True)
    if saga is None:
        log.warning("%s for order %s, which has no saga here; ignored", event.name, order_id)
        return []
    decision = domain.on_reply(
        saga, step, bool(event.data["succeeded"]), event.data.get("reason"), now, timeouts
    )
    return await _carry_out(sagas, decision, event.trace_headers)


async def sweep_timeouts(
    sagas: Sagas, now: datetime, timeouts: StepTimeouts, limit: int = 100
) -> list[Envelope]:
    """Turn every saga whose awaited step has run out of time. No message starts this, so
    each saga's work continues the trace of the request that placed its order."""
    messages: list[Envelope] = []
    for saga, trace_context in await sagas.timed_out(now, limit):
        decision = domain.on_timeout(saga, now, timeouts)
        if decision is None:
            continue
        assert saga.awaiting is not None
        metrics.SAGA_STEP_TIMEOUTS.labels(step=saga.awaiting.value).inc()
        with tracing.continued(trace_context, "saga step_timeout", order_id=saga.order_id):
            messages += await _carry_out(sagas, decision, {})
    return messages


async def _carry_out(
    sagas: Sagas, decision: Decision, trace_headers: dict[str, str]
) -> list[Envelope]:
    if decision.states or decision.send:
        await sagas.save(decision.saga)
    await sagas.record(decision.saga.order_id, decision.records)
    return _messages(decision, trace_headers)


def _messages(decision: Decision, trace_headers: dict[str, str]) -> list[Envelope]:
    """The command the decision sends and the outcome it announces."""
    saga = decision.saga
    order_id = saga.order_id
    messages = []
    if decision.send is not None:
        messages.append(
            new_event(
                decision.send.value,
                order_id,
                _command_body(decision.send, saga.terms),
                trace_headers=trace_headers,
            )
        )
    if decision.outcome is Outcome.COMPLETED:
        messages.append(
            new_event(
                "SagaCompleted", order_id, {"order_id": order_id}, trace_headers=trace_headers
            )
        )
    elif decision.outcome is Outcome.COMPENSATED:
        body = {"order_id": order_id, "reason": saga.reason or "compensated"}
        messages.append(new_event("SagaCompensated", order_id, body, trace_headers=trace_headers))
    return messages


def _command_body(step: Step, terms: OrderTerms) -> dict[str, Any]:
    base = {"order_id": terms.order_id}
    if step is Step.RESERVE_STOCK:
        return {
            **base,
            "user_id": terms.user_id,
            "items": [{"sku": sku, "quantity": q} for sku, q in terms.items],
            "total": format_money(terms.total),
        }
    if step is Step.CHARGE_PAYMENT:
        return {**base, "user_id": terms.user_id, "amount": format_money(terms.total)}
    if step is Step.REFUND_PAYMENT:
        return {**base, "user_id": terms.user_id}
    return base  # ReleaseStock: inventory knows what it holds for the order


Reaction = Callable[[Envelope, Sagas, datetime, StepTimeouts], Awaitable[list[Envelope]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "OrderPlaced": on_order_placed,
    "ReserveStockReply": on_reply,
    "ChargePaymentReply": on_reply,
    "RefundPaymentReply": on_reply,
    "ReleaseStockReply": on_reply,
}
