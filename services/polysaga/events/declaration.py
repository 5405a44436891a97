"""The one declaration of every message: its bounded context, kind, version, body, producer
and consumers. Each message's body is a Struct of ``polysaga.events.payloads`` (one per
version still readable), named here.

Most messages are events (facts a context announces). The orchestrated saga adds commands
(the orchestrator asks one participant to do something) and replies (the participant says
how it went); they travel, are stored, deduplicated and consumed exactly as events are, on
``<context>.commands.<Name>`` and ``<context>.replies.<Name>``.

Streams, consumers, NATS permissions, the consumer edge's decoding, the README's event
catalogue and the AsyncAPI document are all derived from this module; nothing else names a
subject by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from polysaga.events import payloads as P
from polysaga.events.payloads import Payload

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"
EVENT_TYPE_PREFIX = "io.polysaga"


@dataclass(frozen=True)
class Context:
    """A bounded context: one producing service, one JetStream stream."""

    name: str
    stream: str
    producer: str
    # The body field whose value is the aggregate id (the message's ``ce-subject``).
    aggregate_field: str = "order_id"

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
    payload: type[Payload]
    # Older versions still readable (upcast on the way in), each with its own body.
    earlier: Mapping[int, type[Payload]] = field(default_factory=dict)
    kind: Kind = Kind.EVENT

    def payload_of(self, version: int) -> type[Payload] | None:
        """The body of ``version``, or None for a version this code cannot read."""
        return self.payload if version == self.version else self.earlier.get(version)

    def aggregate_id(self, data: Payload) -> str:
        return str(getattr(data, self.context.aggregate_field))

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
USERS = Context("users", "USERS", producer="user", aggregate_field="user_id")
CATALOG = Context("catalog", "CATALOG", producer="catalog", aggregate_field="sku")
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


def _event(
    payload: type[Payload],
    version: int,
    context: Context,
    consumers: Iterable[str],
    earlier: Mapping[int, type[Payload]] | None = None,
) -> EventSpec:
    return EventSpec(
        payload.__name__, version, context, frozenset(consumers), payload, dict(earlier or {})
    )


def _command(payload: type[Payload], version: int, handler: str) -> EventSpec:
    return EventSpec(
        payload.__name__, version, SAGAS, frozenset({handler}), payload, kind=Kind.COMMAND
    )


def _reply(payload: type[Payload], version: int, context: Context) -> EventSpec:
    return EventSpec(
        payload.__name__, version, context, frozenset({_ORCHESTRATOR}), payload, kind=Kind.REPLY
    )


EVENTS: tuple[EventSpec, ...] = (
    # Payment learns each order's user and total from OrderPlaced: it charges only that.
    # The orchestrator starts a saga for an order placed with "saga": "orchestration".
    _event(P.OrderPlaced, 1, ORDERS, {"inventory", "payment", _VIEW, _ORCHESTRATOR}),
    _event(P.OrderConfirmed, 1, ORDERS, {_VIEW, "notification", _SALES}),
    _event(P.OrderCancelled, 1, ORDERS, {"inventory", "payment", _VIEW, "notification"}),
    # The rest of the order's life: the payment it took, then after the saga's outcome the
    # shipment and the delivery. Its summary shows them.
    _event(P.PaymentReceived, 1, ORDERS, {_VIEW}),
    _event(P.OrderShipped, 1, ORDERS, {_VIEW}),
    _event(P.OrderDelivered, 1, ORDERS, {_VIEW}),
    # A charge the order service cannot match with an order: payment gives it back.
    _event(P.PaymentRejected, 1, ORDERS, {"payment"}),
    _event(P.StockReserved, 1, INVENTORY, {"payment", _VIEW}),
    _event(P.StockReservationFailed, 1, INVENTORY, {"order", _VIEW}),
    _event(P.StockReleased, 1, INVENTORY, {_VIEW}),
    _event(P.PaymentProcessed, 2, PAYMENTS, {"order", _VIEW}, {1: P.PaymentProcessedV1}),
    _event(P.PaymentFailed, 1, PAYMENTS, {"order", _VIEW}),
    _event(P.PaymentRefunded, 1, PAYMENTS, {_VIEW}),
    # notification keeps a local replica of e-mail addresses, as order keeps prices.
    _event(P.UserRegistered, 1, USERS, {_VIEW, "notification"}),
    _event(P.UserProfileUpdated, 1, USERS, {_VIEW, "notification"}),
    _event(P.ProductCreated, 1, CATALOG, {"order", _VIEW}),
    _event(P.ProductPriceChanged, 1, CATALOG, {"order", _VIEW}),
    _event(P.ProductRenamed, 1, CATALOG, {_VIEW}),
    _event(P.NotificationSent, 1, NOTIFICATIONS, set()),
    _command(P.ReserveStock, 1, "inventory"),
    _command(P.ReleaseStock, 1, "inventory"),
    _command(P.ChargePayment, 1, "payment"),
    _command(P.RefundPayment, 1, "payment"),
    _reply(P.ReserveStockReply, 1, INVENTORY),
    _reply(P.ReleaseStockReply, 1, INVENTORY),
    _reply(P.ChargePaymentReply, 1, PAYMENTS),
    _reply(P.RefundPaymentReply, 1, PAYMENTS),
    _event(P.SagaCompleted, 1, SAGAS, {"order"}),
    _event(P.SagaCompensated, 1, SAGAS, {"order"}),
)

_BY_NAME = {spec.name: spec for spec in EVENTS}


class UnknownEventError(LookupError):
    """An event name that the declaration does not know."""


_BY_PAYLOAD = {spec.payload: spec for spec in EVENTS}


def spec(name: str) -> EventSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownEventError(name) from None


def spec_of(payload: Payload) -> EventSpec:
    """The event whose current body ``payload`` is."""
    try:
        return _BY_PAYLOAD[type(payload)]
    except KeyError:
        raise UnknownEventError(type(payload).__name__) from None


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
