"""Payment's saga reactions and commands; the handler map at the bottom says who reacts to
what. A choreographed order is charged when StockReserved arrives and refunded on
OrderCancelled; an orchestrated one only on the orchestrator's ChargePayment and
RefundPayment, answered with a reply. Both go through the same two rules below."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payment.adapters import PaymentStore
from payment.domain import PaymentStatus, may_charge, must_refund
from polysaga import metrics
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.saga_style import orchestrated
from polysaga.money import format_money, parse_money


@dataclass(frozen=True)
class Decided:
    """What a charge or refund came to, and the events it caused (none when it had been
    decided before)."""

    succeeded: bool
    reason: str | None = None
    events: list[Envelope] = field(default_factory=list)


async def charge(
    cause: Envelope, store: PaymentStore, order_id: str, user_id: str, amount: Decimal
) -> Decided:
    """Take the amount from the account once; a second request finds the decision (or the
    tombstone of a refund that came first) and changes nothing."""
    await store.lock_order(order_id)
    existing = await store.payment(order_id)
    if not may_charge(existing.status if existing else None):
        assert existing is not None
        charged = existing.status is PaymentStatus.CHARGED
        return Decided(charged, None if charged else existing.reason or existing.status.lower())
    if await store.debit(user_id, amount):
        await store.record(order_id, user_id, amount, PaymentStatus.CHARGED)
        body = {"order_id": order_id, "user_id": user_id, "amount": format_money(amount)}
        return Decided(True, events=[_caused(cause, "PaymentProcessed", order_id, body)])
    reason = "insufficient_funds" if await store.has_account(user_id) else "no_account"
    await store.record(order_id, user_id, amount, PaymentStatus.FAILED, reason)
    body = {"order_id": order_id, "user_id": user_id, "reason": reason}
    return Decided(False, reason, [_caused(cause, "PaymentFailed", order_id, body)])


async def refund(cause: Envelope, store: PaymentStore, order_id: str, user_id: str) -> Decided:
    """Give a charge back, once; before any charge, leave a tombstone so a late one charges
    nothing. Always succeeds."""
    await store.lock_order(order_id)
    existing = await store.payment(order_id)
    if existing is None:
        await store.record(
            order_id, user_id, parse_money("0"), PaymentStatus.CANCELLED, "cancelled_before_charge"
        )
        return Decided(True)
    if not must_refund(existing.status):
        return Decided(True)
    await store.credit(existing.user_id, existing.amount)
    await store.record(order_id, existing.user_id, existing.amount, PaymentStatus.REFUNDED)
    metrics.COMPENSATIONS.labels(action="refund").inc()
    body = {
        "order_id": order_id,
        "user_id": existing.user_id,
        "amount": format_money(existing.amount),
    }
    return Decided(True, events=[_caused(cause, "PaymentRefunded", order_id, body)])


# --- choreography -------------------------------------------------------------------------


async def on_stock_reserved(event: Envelope, store: PaymentStore) -> list[Envelope]:
    if orchestrated(event.data):
        return []  # the orchestrator will send ChargePayment
    d = event.data
    return (await charge(event, store, d["order_id"], d["user_id"], parse_money(d["total"]))).events


async def on_order_cancelled(event: Envelope, store: PaymentStore) -> list[Envelope]:
    if orchestrated(event.data):
        return []  # the orchestrator has sent RefundPayment already, if one was due
    return (await refund(event, store, event.data["order_id"], event.data["user_id"])).events


# --- orchestration ------------------------------------------------------------------------


async def on_charge_payment(command: Envelope, store: PaymentStore) -> list[Envelope]:
    d = command.data
    decided = await charge(command, store, d["order_id"], d["user_id"], parse_money(d["amount"]))
    return [*decided.events, reply(command, decided)]


async def on_refund_payment(command: Envelope, store: PaymentStore) -> list[Envelope]:
    decided = await refund(command, store, command.data["order_id"], command.data["user_id"])
    return [*decided.events, reply(command, decided)]


def reply(command: Envelope, decided: Decided) -> Envelope:
    order_id = command.data["order_id"]
    body = {
        "order_id": order_id,
        "command_id": command.event_id,
        "succeeded": decided.succeeded,
        "reason": decided.reason,
    }
    return _caused(command, f"{command.name}Reply", order_id, body)


def _caused(cause: Envelope, name: str, order_id: str, data: dict[str, Any]) -> Envelope:
    return new_event(name, order_id, data, trace_headers=cause.trace_headers)


Reaction = Callable[[Envelope, PaymentStore], Awaitable[list[Envelope]]]

EVENT_HANDLERS: dict[str, Reaction] = {
    "StockReserved": on_stock_reserved,
    "OrderCancelled": on_order_cancelled,
    "ChargePayment": on_charge_payment,
    "RefundPayment": on_refund_payment,
}
