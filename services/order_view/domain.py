"""The order summary read model's rules, free of I/O: which status the history shows and how
statuses rank, what a saga step records in the history, how a stored document becomes the view a
reader gets, and a digest that lets two generations of the view be compared.

Every rule here is order-independent on purpose: events reach the view from five streams
with no ordering between them, and a rebuild replays the streams one after the other."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec

from polysaga.events import payloads as P
from polysaga.events.payloads import Payload

# The order's events that carry the order as placed (its facts).
ORDER_EVENTS = frozenset({"OrderPlaced", "OrderConfirmed", "OrderCancelled"})
# The rest of its life: the payment it took, its shipment and delivery. They carry no
# facts, only what happened.
LIFE_EVENTS = frozenset({"PaymentReceived", "OrderShipped", "OrderDelivered"})
SAGA_STEPS = frozenset(
    {
        "StockReserved",
        "StockReservationFailed",
        "StockReleased",
        "PaymentProcessed",
        "PaymentFailed",
        "PaymentRefunded",
    }
)
# Breaks ties between history steps stamped with the same millisecond (BSON dates keep no
# more): the order in which the saga takes them.
_STEP_ORDER = {
    name: rank
    for rank, name in enumerate(
        (
            "OrderPlaced",
            "StockReserved",
            "StockReservationFailed",
            "PaymentProcessed",
            "PaymentFailed",
            "PaymentReceived",
            "OrderConfirmed",
            "OrderCancelled",
            "StockReleased",
            "PaymentRefunded",
            "OrderShipped",
            "OrderDelivered",
        )
    )
}


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"


# The status each step of the order's own life leads to, and how far along its life that is.
_STATUS_OF = {
    "OrderConfirmed": OrderStatus.CONFIRMED,
    "OrderCancelled": OrderStatus.CANCELLED,
    "OrderShipped": OrderStatus.SHIPPED,
    "OrderDelivered": OrderStatus.DELIVERED,
}
_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.CONFIRMED: 1,
    OrderStatus.CANCELLED: 1,
    OrderStatus.SHIPPED: 2,
    OrderStatus.DELIVERED: 3,
}


def status_of(steps: Iterable[str]) -> OrderStatus:
    """The status the history shows: the furthest step of the order's life in it. Decided
    from the whole set of steps, never from which event came last, so any arrival order
    gives the same status (a rebuild replays the streams one after the other). The order
    aggregate allows one outcome and ships only a confirmed order, so no two steps of one
    rank disagree (and ``refused_steps`` keeps one of a confirmation and a cancellation)."""
    return max(
        (_STATUS_OF[step] for step in steps if step in _STATUS_OF),
        key=_RANK.__getitem__,
        default=OrderStatus.PENDING,
    )


_FIELD_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def field_key(text: str) -> str:
    """``text`` (a SKU, an event id: data, never trusted) as one key of a map inside a
    document. Every UTF-8 byte outside ``[A-Za-z0-9_-]`` is percent-encoded, so a key never
    holds a '.' (which would nest), a '$' (an operator), a NUL or a control character, and
    the empty text is the lone '%', which no other text encodes to: every key is a
    non-empty field name, and two texts never share one. A SKU of the catalog's own
    alphabet keeps the key it had before this encoding covered every byte."""
    if not text:
        return "%"
    encoded = text.encode("utf-8", "surrogatepass")
    return "".join(chr(byte) if byte in _FIELD_SAFE else f"%{byte:02X}" for byte in encoded)


def item_count(items: Iterable[P.OrderLine]) -> int:
    return sum(item.quantity for item in items)


def history_detail(data: Payload) -> str | None:
    """The one fact worth showing next to a step: why it failed, how much was paid, or the
    parcel's tracking number."""
    reason, amount = getattr(data, "reason", None), getattr(data, "amount", None)
    tracking = getattr(data, "tracking_number", None)
    if reason is not None:
        return str(reason)
    if amount is not None:
        return f"amount {amount}"
    if tracking is not None:
        return f"tracking {tracking}"
    return None


@dataclass(frozen=True)
class HistoryStep:
    step: str
    at: datetime
    detail: str | None


# Which steps one saga cannot hold together (either way round): a reservation and its
# failure; a payment and its failure; after a confirmation no failure and no compensation;
# after a failed reservation no payment and nothing to release.
_EXCLUSIVE = (
    ("StockReserved", "StockReservationFailed"),
    ("PaymentProcessed", "PaymentFailed"),
    ("OrderConfirmed", "OrderCancelled"),
    *(
        ("OrderConfirmed", step)
        for step in ("StockReservationFailed", "PaymentFailed", "StockReleased", "PaymentRefunded")
    ),
    *(
        ("StockReservationFailed", step)
        for step in ("PaymentProcessed", "PaymentFailed", "StockReleased")
    ),
)
_EXCLUDES: dict[str, frozenset[str]] = {}
for _a, _b in _EXCLUSIVE:
    _EXCLUDES[_a] = _EXCLUDES.get(_a, frozenset()) | {_b}
    _EXCLUDES[_b] = _EXCLUDES.get(_b, frozenset()) | {_a}


# Who decides: the order's own events first (the event-sourced order is the authority on
# its state), then inventory's steps, then payment's, as the saga takes them.
_DECIDER = {
    **dict.fromkeys(ORDER_EVENTS | LIFE_EVENTS, 0),
    **dict.fromkeys(("StockReserved", "StockReservationFailed", "StockReleased"), 1),
    **dict.fromkeys(("PaymentProcessed", "PaymentFailed", "PaymentRefunded"), 2),
}


def _precedence(key: str, entry: Mapping[str, Any]) -> tuple[int, datetime, int, str]:
    # Within one producer the earlier step wins (a second, later claim is the suspect one);
    # the saga's order and then the key break ties.
    step = entry["step"]
    return (_DECIDER.get(step, 3), _utc(entry["at"]), _STEP_ORDER.get(step, 99), key)


def refused_steps(entries: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The keys of the steps the saga does not allow beside the others: a second step of a
    kind, or one exclusive with a step that takes precedence. Decided from the whole set,
    so it does not depend on the order in which the events arrived (a rebuild replays the
    streams one after the other and must come to the same view)."""
    kept: set[str] = set()
    refused: set[str] = set()
    for key, entry in sorted(entries.items(), key=lambda kv: _precedence(*kv)):
        step = entry["step"]
        if step in kept or _EXCLUDES.get(step, frozenset()) & kept:
            refused.add(key)
        else:
            kept.add(step)
    return refused


def sorted_history(entries: Mapping[str, Mapping[str, Any]]) -> list[HistoryStep]:
    """History is stored as a map keyed by event id (re-setting a key is idempotent, where a
    $push is not) and holds every step received; the history shown is the steps the saga
    allows (``refused_steps``), ordered by time, then saga order, then key."""
    refused = refused_steps(entries)
    ordered = sorted(
        ((k, e) for k, e in entries.items() if k not in refused),
        key=lambda kv: (_utc(kv[1]["at"]), _STEP_ORDER.get(kv[1]["step"], 99), kv[0]),
    )
    return [HistoryStep(e["step"], _utc(e["at"]), e.get("detail")) for _, e in ordered]


@dataclass(frozen=True)
class UserRef:
    name: str
    email: str


@dataclass(frozen=True)
class SummaryItem:
    sku: str
    name: str | None
    quantity: int
    unit_price: str


@dataclass(frozen=True)
class OrderSummary:
    """The view a reader gets: one order with its user, product names and saga history."""

    order_id: str
    user_id: str | None
    user: UserRef | None
    items: list[SummaryItem]
    item_count: int
    total: str | None
    status: OrderStatus
    cancel_reason: str | None
    tracking_number: str | None
    created_at: datetime | None
    updated_at: datetime | None
    order_version: int
    history: list[HistoryStep]


def summary_from_document(doc: Mapping[str, Any]) -> OrderSummary:
    """Compose the view from a stored document. Fields an event has not supplied yet are
    absent from the document and default here (FerretDB v1 drops a top-level null given to
    $setOnInsert, so defaults are not stored)."""
    names: Mapping[str, str] = doc.get("product_names") or {}
    user = doc.get("user")
    history = sorted_history(doc.get("history") or {})
    return OrderSummary(
        order_id=str(doc["_id"]),
        user_id=doc.get("user_id"),
        user=UserRef(user["name"], user["email"]) if user else None,
        items=[
            SummaryItem(
                sku=item["sku"],
                name=names.get(field_key(item["sku"])),
                quantity=int(item["quantity"]),
                unit_price=item["unit_price"],
            )
            for item in doc.get("items") or []
        ],
        item_count=int(doc.get("item_count", 0)),
        total=doc.get("total"),
        status=status_of(step.step for step in history),
        cancel_reason=doc.get("cancel_reason"),
        tracking_number=doc.get("tracking_number"),
        created_at=_utc(doc["created_at"]) if doc.get("created_at") else None,
        # The latest step shown: a refused step's time does not count.
        updated_at=max((step.at for step in history), default=None),
        order_version=int(doc.get("order_version", 0)),
        history=history,
    )


class SummaryDigest:
    """sha256 over summaries fed in order-id order, each encoded as JSON with sorted keys.
    Two generations built from the same events give the same digest."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, summary: OrderSummary) -> None:
        self._hash.update(msgspec.json.encode(summary, order="sorted"))
        self._hash.update(b"\n")
        self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
