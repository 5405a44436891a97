"""The one declaration of every message: its bounded context, kind, version, producer and
consumers.

Most messages are events (facts a context announces). The orchestrated saga adds commands
(the orchestrator asks one participant to do something) and replies (the participant says
how it went); they travel, are stored, deduplicated and consumed exactly as events are, on
``<context>.commands.<Name>`` and ``<context>.replies.<Name>``.

Streams, consumers, NATS permissions and the README's event catalogue are all derived from
this module; nothing else names a subject by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

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
        """Every message of the context: its events, and its commands or replies."""
        return f"{self.name}.>"


class Kind(StrEnum):
    EVENT = "events"  # a fact, for whoever is interested
    COMMAND = "commands"  # a request to the one service that handles it
    REPLY = "replies"  # how a command went, for the one that sent it

    @property
    def singular(self) -> str:
        return {"events": "event", "commands": "command", "replies": "reply"}[self.value]


@dataclass(frozen=True)
class EventSpec:
    name: str
    version: int
    context: Context
    consumers: frozenset[str]
    kind: Kind = Kind.EVENT

    @property
    def subject(self) -> str:
        return f"{self.context.name}.{self.kind.value}.{self.name}"

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
# The orchestrated saga: its commands to the participants and its outcome for the order.
SAGAS = Context("sagas", "SAGAS", producer="orchestrator")

CONTEXTS: tuple[Context, ...] = (
    ORDERS,
    INVENTORY,
    PAYMENTS,
    USERS,
    CATALOG,
    NOTIFICATIONS,
    SAGAS,
)

# The read side follows every step of the saga, compensations included.
_VIEW = "order-view"
_SALES = "sales"
# Services whose state can be rebuilt by replaying the streams they consume from the start.
READ_MODELS = frozenset({_VIEW, _SALES})


_ORCHESTRATOR = "orchestrator"


def _event(name: str, version: int, context: Context, consumers: Iterable[str]) -> EventSpec:
    return EventSpec(name, version, context, frozenset(consumers))


def _command(name: str, version: int, handler: str) -> EventSpec:
    return EventSpec(name, version, SAGAS, frozenset({handler}), Kind.COMMAND)


def _reply(command: str, version: int, context: Context) -> EventSpec:
    return EventSpec(f"{command}Reply", version, context, frozenset({_ORCHESTRATOR}), Kind.REPLY)


EVENTS: tuple[EventSpec, ...] = (
    # The orchestrator starts a saga for an order placed with "saga": "orchestration".
    _event("OrderPlaced", 1, ORDERS, {"inventory", _VIEW, _ORCHESTRATOR}),
    _event("OrderConfirmed", 1, ORDERS, {_VIEW, "notification", _SALES}),
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
    _command("ReserveStock", 1, "inventory"),
    _command("ReleaseStock", 1, "inventory"),
    _command("ChargePayment", 1, "payment"),
    _command("RefundPayment", 1, "payment"),
    _reply("ReserveStock", 1, INVENTORY),
    _reply("ReleaseStock", 1, INVENTORY),
    _reply("ChargePayment", 1, PAYMENTS),
    _reply("RefundPayment", 1, PAYMENTS),
    _event("SagaCompleted", 1, SAGAS, {"order"}),
    _event("SagaCompensated", 1, SAGAS, {"order"}),
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
        "| message | kind | version | subject | producer | consumers |",
        "|---|---|---|---|---|---|",
    ]
    for e in EVENTS:
        consumers = ", ".join(sorted(e.consumers)) or "—"
        lines.append(
            f"| {e.name} | {e.kind.singular} | v{e.version} | `{e.subject}` | {e.producer}"
            f" | {consumers} |"
        )
    return "\n".join(lines)
