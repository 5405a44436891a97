"""Notification's rules, free of I/O: which events are order outcomes, and the e-mail each
outcome becomes. The message is a pure function of the event and the recipient (its
Message-ID and Date included), so a message sent twice after a crash is the same message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum

from polysaga.events import payloads as P

MESSAGE_ID_DOMAIN = "polysaga"


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


# The order service's cancel reasons ("<cause>: <detail>" or a bare cause), told to a person.
_CANCEL_CAUSES = {
    "stock_unavailable": "some of the items were not in stock",
    "payment_failed": "the payment did not go through",
    "deadline_exceeded": "it could not be completed in time",
}


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class OrderOutcome:
    """What an OrderConfirmed or OrderCancelled event says about one order."""

    order_id: str
    user_id: str
    outcome: Outcome
    total: str
    lines: tuple[OrderLine, ...]
    reason: str | None
    decided_at: datetime

    @classmethod
    def from_event(cls, data: P.OrderOutcomeEvent, time: datetime) -> OrderOutcome:
        cancelled = isinstance(data, P.OrderCancelled)
        return cls(
            order_id=str(data.order_id),
            user_id=data.user_id,
            outcome=Outcome.CANCELLED if cancelled else Outcome.CONFIRMED,
            total=data.total,
            lines=tuple(OrderLine(line.sku, line.quantity) for line in data.items),
            reason=data.reason if isinstance(data, P.OrderCancelled) else None,
            decided_at=time,
        )


@dataclass(frozen=True)
class Recipient:
    """One user's address, as the user service last told us (``version`` orders updates)."""

    user_id: str
    name: str
    email: str
    version: int


def message_id(order_id: str, outcome: Outcome) -> str:
    """One Message-ID per (order, outcome): a resend is recognisably the same message."""
    return f"<{order_id}.{outcome.value}@{MESSAGE_ID_DOMAIN}>"


def subject(outcome: OrderOutcome) -> str:
    if outcome.outcome is Outcome.CONFIRMED:
        return f"Your order {outcome.order_id} is confirmed"
    return f"Your order {outcome.order_id} was cancelled"


def explain_cancel_reason(reason: str) -> str:
    cause = reason.split(":", 1)[0].strip()
    return _CANCEL_CAUSES.get(cause, "it could not be completed")


def body(outcome: OrderOutcome, recipient: Recipient) -> str:
    lines = [f"Hello {recipient.name},", ""]
    if outcome.outcome is Outcome.CONFIRMED:
        lines.append(f"your order {outcome.order_id} is confirmed.")
    else:
        lines += [
            f"your order {outcome.order_id} was cancelled:",
            f"{explain_cancel_reason(outcome.reason or '')}.",
            "Any payment taken for it is refunded.",
        ]
    lines += ["", "Items:"]
    lines += [f"  {line.quantity} x {line.sku}" for line in outcome.lines]
    lines += [f"Total: {outcome.total}", ""]
    if outcome.reason is not None:
        lines += [f"(reason code: {outcome.reason})", ""]
    return "\n".join(lines)


def outcome_message(outcome: OrderOutcome, recipient: Recipient, sender: str) -> EmailMessage:
    """The e-mail for an order outcome. Raises ValueError for a header that would need a
    line break (an address trying to inject headers)."""
    message = EmailMessage()
    message["Message-ID"] = message_id(outcome.order_id, outcome.outcome)
    message["Date"] = format_datetime(outcome.decided_at)
    message["From"] = sender
    message["To"] = recipient.email  # the bare address: the name is in the greeting
    message["Subject"] = subject(outcome)
    message["X-Polysaga-Order-Id"] = outcome.order_id
    message["X-Polysaga-Outcome"] = outcome.outcome.value
    message.set_content(body(outcome, recipient))
    return message
