"""The one declaration of every event: its bounded context, version, producer and consumers.

Streams, consumers, NATS permissions and the README's event catalogue are all derived from
this module; nothing else names a subject by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"
EVENT_TYPE_PREFIX = "io.polysaga"


@dataclass(frozen=True)
class Context:
    """A bounded context: one producing service, one JetStream stream."""

    name: str
    stream: str
    producer: str

    @property
    def subjects(self) -> str:
        return f"{self.name}.events.>"


@dataclass(frozen=True)
class EventSpec:
    name: str
    version: int
    context: Context
    consumers: frozenset[str]

    @property
    def subject(self) -> str:
        return f"{self.context.name}.events.{self.name}"

    @property
    def ce_type(self) -> str:
        return f"{EVENT_TYPE_PREFIX}.{self.name}.v{self.version}"

    @property
    def producer(self) -> str:
        return self.context.producer


ORDERS = Context("orders", "ORDERS", producer="order")
INVENTORY = Context("inventory", "INVENTORY", producer="inventory")
PAYMENTS = Context("payments", "PAYMENTS", producer="payment")
USERS = Context("users", "USERS", producer="user")
CATALOG = Context("catalog", "CATALOG", producer="catalog")
NOTIFICATIONS = Context("notifications", "NOTIFICATIONS", producer="notification")

CONTEXTS: tuple[Context, ...] = (ORDERS, INVENTORY, PAYMENTS, USERS, CATALOG, NOTIFICATIONS)

# The read side follows every step of the saga, compensations included.
_VIEW = "order-view"
# Services whose state can be rebuilt by replaying the streams they consume from the start.
READ_MODELS = frozenset({_VIEW})


def _event(name: str, version: int, context: Context, consumers: Iterable[str]) -> EventSpec:
    return EventSpec(name, version, context, frozenset(consumers))


EVENTS: tuple[EventSpec, ...] = (
    _event("OrderPlaced", 1, ORDERS, {"inventory", _VIEW}),
    _event("OrderConfirmed", 1, ORDERS, {_VIEW, "notification"}),
    _event("OrderCancelled", 1, ORDERS, {"inventory", "payment", _VIEW, "notification"}),
    _event("StockReserved", 1, INVENTORY, {"payment", _VIEW}),
    _event("StockReservationFailed", 1, INVENTORY, {"order", _VIEW}),
    _event("StockReleased", 1, INVENTORY, {_VIEW}),
    _event("PaymentProcessed", 2, PAYMENTS, {"order", _VIEW}),
    _event("PaymentFailed", 1, PAYMENTS, {"order", _VIEW}),
    _event("PaymentRefunded", 1, PAYMENTS, {_VIEW}),
    # notification keeps a local replica of e-mail addresses, as order keeps prices.
    _event("UserRegistered", 1, USERS, {_VIEW, "notification"}),
    _event("UserProfileUpdated", 1, USERS, {_VIEW, "notification"}),
    _event("ProductCreated", 1, CATALOG, {"order", _VIEW}),
    _event("ProductPriceChanged", 1, CATALOG, {"order", _VIEW}),
    _event("ProductRenamed", 1, CATALOG, {_VIEW}),
    _event("NotificationSent", 1, NOTIFICATIONS, set()),
)

_BY_NAME = {spec.name: spec for spec in EVENTS}


class UnknownEventError(LookupError):
    """An event name that the declaration does not know."""


def spec(name: str) -> EventSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownEventError(name) from None


def published_by(service: str) -> tuple[EventSpec, ...]:
    return tuple(e for e in EVENTS if e.producer == service)


def consumed_by(service: str) -> dict[Context, tuple[EventSpec, ...]]:
    """The events a service consumes, grouped by the stream they come from."""
    grouped: dict[Context, list[EventSpec]] = {}
    for event in EVENTS:
        if service in event.consumers:
            grouped.setdefault(event.context, []).append(event)
    return {context: tuple(events) for context, events in grouped.items()}


def services() -> frozenset[str]:
    names = {c.producer for c in CONTEXTS}
    for event in EVENTS:
        names |= event.consumers
    return frozenset(names)


def dead_letter_subject(service: str, subject: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{service}.{subject}"


def catalogue_markdown() -> str:
    """The README's event catalogue, rendered from the declaration."""
    lines = [
        "| event | version | subject | producer | consumers |",
        "|---|---|---|---|---|",
    ]
    for e in EVENTS:
        consumers = ", ".join(sorted(e.consumers)) or "—"
        lines.append(f"| {e.name} | v{e.version} | `{e.subject}` | {e.producer} | {consumers} |")
    return "\n".join(lines)
