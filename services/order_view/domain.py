"""The order summary read model's rules, free of I/O: which status an event writes and how it
ranks, what a saga step records in the history, how a stored document becomes the view a
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

ORDER_EVENTS = frozenset({"OrderPlaced", "OrderConfirmed", "OrderCancelled"})
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
            "OrderConfirmed",
            "OrderCancelled",
            "StockReleased",
            "PaymentRefunded",
        )
    )
}


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


_TERMINAL = {"OrderConfirmed": OrderStatus.CONFIRMED, "OrderCancelled": OrderStatus.CANCELLED}


@dataclass(frozen=True)
class StatusWrite:
    """What an event says about the status. A terminal event always wins (``overrides``);
    anything else only supplies PENDING where no status is known yet. An order has at most
    one terminal event (the order aggregate's optimistic concurrency guarantees it), so the
    merge is commutative."""

    status: OrderStatus
    overrides: bool


def status_write(event_name: str) -> StatusWrite:
    terminal = _TERMINAL.get(event_name)
    if terminal is not None:
        return StatusWrite(terminal, overrides=True)
    return StatusWrite(OrderStatus.PENDING, overrides=False)


def merge_status(current: OrderStatus | None, write: StatusWrite) -> OrderStatus:
    if current is None or write.overrides:
        return write.status
    return current


def field_key(text: str) -> str:
    """``text`` as one key of a map inside a document: a '.' would nest and a leading '$' is
    an operator. SKUs may contain dots. Injective, so two SKUs never share a key."""
    return text.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def item_count(items: Iterable[P.OrderLine]) -> int:
    return sum(item.quantity for item in items)


def history_detail(data: Payload) -> str | None:
    """The one fact worth showing next to a step: why it failed, or how much was paid."""
    reason, amount = getattr(data, "reason", None), getattr(data, "amount", None)
    if reason is not None:
        return str(reason)
    if amount is not None:
        return f"amount {amount}"
    return None


@dataclass(frozen=True)
class HistoryStep:
    step: str
    at: datetime
    detail: str | None


def sorted_history(entries: Mapping[str, Mapping[str, Any]]) -> list[HistoryStep]:
    """History is stored as a map keyed by event id (re-setting a key is idempotent, where a
    $push is not) and ordered here, by time, then saga order, then key."""
    ordered = sorted(
        entries.items(),
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
        status=OrderStatus(doc.get("status", OrderStatus.PENDING)),
        cancel_reason=doc.get("cancel_reason"),
        created_at=_utc(doc["created_at"]) if doc.get("created_at") else None,
        updated_at=_utc(doc["updated_at"]) if doc.get("updated_at") else None,
        order_version=int(doc.get("order_version", 0)),
        history=sorted_history(doc.get("history") or {}),
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
