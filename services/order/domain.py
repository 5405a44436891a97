"""The Order aggregate: its state is the fold of its events; commands check the rules and
return new events. No I/O here.

Its whole life: PENDING (placed; PaymentReceived records the saga's payment while it is
pending) → CONFIRMED or CANCELLED (the saga's outcome) → SHIPPED (with a tracking number,
only from CONFIRMED) → DELIVERED (only from SHIPPED)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from polysaga.events import payloads as P
from polysaga.events.saga_style import SagaStyle
from polysaga.money import MAX_AMOUNT, format_money, parse_money


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"


class IllegalTransitionError(Exception):
    """A command that the order's current state does not allow."""


class OrderTooLargeError(Exception):
    """The order's total is more than any account can hold."""


class UnknownProductError(Exception):
    def __init__(self, skus: Iterable[str]) -> None:
        self.skus = sorted(skus)
        super().__init__(f"unknown SKU(s): {', '.join(self.skus)}")


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "unit_price": format_money(self.unit_price),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderLine:
        return cls(data["sku"], int(data["quantity"]), parse_money(data["unit_price"]))

    def as_payload(self) -> P.OrderLine:
        return P.OrderLine(
            sku=self.sku, quantity=self.quantity, unit_price=format_money(self.unit_price)
        )

    @classmethod
    def from_payload(cls, line: P.OrderLine) -> OrderLine:
        return cls(line.sku, line.quantity, parse_money(line.unit_price))


@dataclass(frozen=True)
class OrderEvent:
    """One fact in an order's stream: the body of a declared event type."""

    data: P.OrderLifeEvent
    occurred_at: datetime

    @property
    def name(self) -> str:
        return type(self.data).__name__


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    status: OrderStatus
    items: tuple[OrderLine, ...]
    total: Decimal
    version: int
    placed_at: datetime
    deadline_at: datetime
    updated_at: datetime
    cancel_reason: str | None = None
    saga: SagaStyle = SagaStyle.CHOREOGRAPHY
    tracking_number: str | None = None
    paid_at: datetime | None = None

    @property
    def orchestrated(self) -> bool:
        return self.saga is SagaStyle.ORCHESTRATION

    # --- commands -----------------------------------------------------------------------

    @staticmethod
    def place(
        order_id: str,
        user_id: str,
        quantities: Sequence[tuple[str, int]],
        prices: dict[str, Decimal],
        now: datetime,
        deadline_at: datetime,
        saga: SagaStyle = SagaStyle.CHOREOGRAPHY,
    ) -> OrderEvent:
        unknown = {sku for sku, _ in quantities if sku not in prices}
        if unknown:
            raise UnknownProductError(unknown)
        merged: dict[str, int] = {}
        for sku, quantity in quantities:
            if quantity <= 0:
                raise IllegalTransitionError(f"quantity for {sku} must be positive")
            merged[sku] = merged.get(sku, 0) + quantity
        lines = [OrderLine(sku, q, prices[sku]) for sku, q in sorted(merged.items())]
        total = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
        if total > MAX_AMOUNT:
            raise OrderTooLargeError(f"order total {total} exceeds the maximum {MAX_AMOUNT}")
        placed = P.OrderPlaced(
            order_id=UUID(order_id),
            user_id=user_id,
            items=[line.as_payload() for line in lines],
            total=format_money(total),
            placed_at=now,
            deadline_at=deadline_at,
            saga=saga.name_in_events,
        )
        return OrderEvent(placed, now)

    def receive_payment(self, amount: Decimal, now: datetime) -> OrderEvent:
        """The saga's payment, taken once, while the order is pending (the caller has
        checked that it matches the order: ``payment_mismatch``)."""
        self._require_pending("receive a payment for")
        if self.paid_at is not None:
            raise IllegalTransitionError("the order's payment was received already")
        received = P.PaymentReceived(
            order_id=UUID(self.order_id),
            user_id=self.user_id,
            amount=format_money(amount),
            received_at=now,
        )
        return OrderEvent(received, now)

    def confirm(self, now: datetime) -> OrderEvent:
        self._require_pending("confirm")
        return OrderEvent(P.OrderConfirmed(**self._facts()), now)

    def cancel(self, reason: str, now: datetime) -> OrderEvent:
        self._require_pending("cancel")
        return OrderEvent(P.OrderCancelled(**self._facts(), reason=reason), now)

    def ship(self, tracking_number: str, now: datetime) -> OrderEvent:
        self._require(OrderStatus.CONFIRMED, "ship")
        shipped = P.OrderShipped(
            order_id=UUID(self.order_id),
            user_id=self.user_id,
            tracking_number=tracking_number,
            shipped_at=now,
        )
        return OrderEvent(shipped, now)

    def deliver(self, now: datetime) -> OrderEvent:
        self._require(OrderStatus.SHIPPED, "deliver")
        delivered = P.OrderDelivered(
            order_id=UUID(self.order_id), user_id=self.user_id, delivered_at=now
        )
        return OrderEvent(delivered, now)

    def _require_pending(self, action: str) -> None:
        self._require(OrderStatus.PENDING, action)

    def _require(self, status: OrderStatus, action: str) -> None:
        if self.status is not status:
            raise IllegalTransitionError(
                f"cannot {action} an order that is {self.status}, only one that is {status}"
            )

    def _facts(self) -> dict[str, Any]:
        return {
            "order_id": UUID(self.order_id),
            "user_id": self.user_id,
            "total": format_money(self.total),
            "items": [line.as_payload() for line in self.items],
            "saga": self.saga.name_in_events,
        }

    # --- evolution ----------------------------------------------------------------------

    def apply(self, event: OrderEvent) -> Order:
        data = event.data
        moved = replace(self, version=self.version + 1, updated_at=event.occurred_at)
        if isinstance(data, P.OrderConfirmed):
            return replace(moved, status=OrderStatus.CONFIRMED, cancel_reason=None)
        if isinstance(data, P.OrderCancelled):
            return replace(moved, status=OrderStatus.CANCELLED, cancel_reason=data.reason)
        if isinstance(data, P.PaymentReceived):
            return replace(moved, paid_at=data.received_at)
        if isinstance(data, P.OrderShipped):
            return replace(moved, status=OrderStatus.SHIPPED, tracking_number=data.tracking_number)
        if isinstance(data, P.OrderDelivered):
            return replace(moved, status=OrderStatus.DELIVERED)
        raise IllegalTransitionError(f"{event.name} cannot follow an existing order")

    @staticmethod
    def start(event: OrderEvent) -> Order:
        d = event.data
        if not isinstance(d, P.OrderPlaced):
            raise IllegalTransitionError(
                f"an order stream must start with OrderPlaced, not {event.name}"
            )
        return Order(
            order_id=str(d.order_id),
            user_id=d.user_id,
            status=OrderStatus.PENDING,
            items=tuple(OrderLine.from_payload(item) for item in d.items),
            total=parse_money(d.total),
            version=1,
            placed_at=d.placed_at,
            deadline_at=d.deadline_at,
            updated_at=event.occurred_at,
            saga=SagaStyle(d.saga),
        )

    @staticmethod
    def replay(events: Iterable[OrderEvent], snapshot: Order | None = None) -> Order | None:
        order = snapshot
        for event in events:
            order = Order.start(event) if order is None else order.apply(event)
        return order

    # --- snapshots ----------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "user_id": self.user_id,
            "status": self.status.value,
            "items": [line.as_dict() for line in self.items],
            "total": format_money(self.total),
            "version": self.version,
            "placed_at": self.placed_at.isoformat(),
            "deadline_at": self.deadline_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "cancel_reason": self.cancel_reason,
            "saga": self.saga.value,
            "tracking_number": self.tracking_number,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
        }

    @staticmethod
    def from_snapshot(data: dict[str, Any]) -> Order:
        return Order(
            order_id=data["order_id"],
            user_id=data["user_id"],
            status=OrderStatus(data["status"]),
            items=tuple(OrderLine.from_dict(item) for item in data["items"]),
            total=parse_money(data["total"]),
            version=int(data["version"]),
            placed_at=datetime.fromisoformat(data["placed_at"]),
            deadline_at=datetime.fromisoformat(data["deadline_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            cancel_reason=data.get("cancel_reason"),
            saga=SagaStyle(data.get("saga", SagaStyle.CHOREOGRAPHY.value)),
            tracking_number=data.get("tracking_number"),
            paid_at=datetime.fromisoformat(data["paid_at"]) if data.get("paid_at") else None,
        )


def payment_mismatch(order: Order | None, user_id: str, amount: Decimal) -> str | None:
    """Why a payment does not belong to this order (none such, another user, another amount),
    or None when it does. A payment that does not is never taken as the order's."""
    if order is None:
        return "unknown_order"
    if user_id != order.user_id:
        return "user_mismatch"
    if amount != order.total:
        return "amount_mismatch"
    return None
