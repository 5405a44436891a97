"""Valid event payloads for the tests, one builder per declared event, each with overridable
fields; ``sample(name)`` gives any declared event's current body."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from polysaga.events import declaration
from polysaga.events import payloads as P

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
USER = "user-1"


def order_id() -> UUID:
    return uuid.uuid4()


def order_lines(*lines: tuple[str, int, str]) -> list[P.OrderLine]:
    return [
        P.OrderLine(sku=s, quantity=q, unit_price=p) for s, q, p in lines or (("APPLE", 2, "1.25"),)
    ]


def stock_lines(*lines: tuple[str, int]) -> list[P.StockLine]:
    return [P.StockLine(sku=s, quantity=q) for s, q in lines or (("APPLE", 2),)]


def order_placed(**fields: Any) -> P.OrderPlaced:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "items": order_lines(),
        "total": "2.50",
        "placed_at": NOW,
        "deadline_at": NOW + timedelta(seconds=30),
    }
    return P.OrderPlaced(**(defaults | fields))


def order_confirmed(**fields: Any) -> P.OrderConfirmed:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "items": order_lines(),
        "total": "2.50",
    }
    return P.OrderConfirmed(**(defaults | fields))


def order_cancelled(**fields: Any) -> P.OrderCancelled:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "items": order_lines(),
        "total": "2.50",
        "reason": "payment_failed: insufficient_funds",
    }
    return P.OrderCancelled(**(defaults | fields))


def stock_reserved(**fields: Any) -> P.StockReserved:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "items": stock_lines(),
        "total": "2.50",
    }
    return P.StockReserved(**(defaults | fields))


def stock_reservation_failed(**fields: Any) -> P.StockReservationFailed:
    defaults: dict[str, Any] = {"order_id": order_id(), "reason": "insufficient_stock"}
    return P.StockReservationFailed(**(defaults | fields))


def stock_released(**fields: Any) -> P.StockReleased:
    defaults: dict[str, Any] = {"order_id": order_id(), "items": stock_lines()}
    return P.StockReleased(**(defaults | fields))


def payment_processed(**fields: Any) -> P.PaymentProcessed:
    defaults: dict[str, Any] = {"order_id": order_id(), "user_id": USER, "amount": "2.50"}
    return P.PaymentProcessed(**(defaults | fields))


def payment_processed_v1(**fields: Any) -> P.PaymentProcessedV1:
    defaults: dict[str, Any] = {"order_id": order_id(), "user_id": USER, "amount_cents": 250}
    return P.PaymentProcessedV1(**(defaults | fields))


def payment_failed(**fields: Any) -> P.PaymentFailed:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "reason": "insufficient_funds",
    }
    return P.PaymentFailed(**(defaults | fields))


def payment_refunded(**fields: Any) -> P.PaymentRefunded:
    defaults: dict[str, Any] = {"order_id": order_id(), "user_id": USER, "amount": "2.50"}
    return P.PaymentRefunded(**(defaults | fields))


def payment_rejected(**fields: Any) -> P.PaymentRejected:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "amount": "2.50",
        "reason": "unknown_order",
    }
    return P.PaymentRejected(**(defaults | fields))


def user_registered(**fields: Any) -> P.UserRegistered:
    defaults: dict[str, Any] = {
        "user_id": uuid.uuid4(),
        "name": "Ada",
        "email": "ada@example.com",
        "version": 1,
    }
    return P.UserRegistered(**(defaults | fields))


def user_profile_updated(**fields: Any) -> P.UserProfileUpdated:
    defaults: dict[str, Any] = {
        "user_id": uuid.uuid4(),
        "name": "Ada L.",
        "email": "ada@example.org",
        "version": 2,
    }
    return P.UserProfileUpdated(**(defaults | fields))


def product_created(**fields: Any) -> P.ProductCreated:
    defaults: dict[str, Any] = {"sku": "APPLE", "name": "Apple", "price": "1.25", "version": 1}
    return P.ProductCreated(**(defaults | fields))


def product_price_changed(**fields: Any) -> P.ProductPriceChanged:
    defaults: dict[str, Any] = {
        "sku": "APPLE",
        "price": "1.50",
        "previous_price": "1.25",
        "version": 2,
    }
    return P.ProductPriceChanged(**(defaults | fields))


def product_renamed(**fields: Any) -> P.ProductRenamed:
    defaults: dict[str, Any] = {
        "sku": "APPLE",
        "name": "Green apple",
        "previous_name": "Apple",
        "version": 2,
    }
    return P.ProductRenamed(**(defaults | fields))


def notification_sent(**fields: Any) -> P.NotificationSent:
    oid = fields.pop("order_id", order_id())
    defaults: dict[str, Any] = {
        "order_id": oid,
        "outcome": "confirmed",
        "to": "ada@example.com",
        "message_id": f"<{oid}.confirmed@polysaga>",
        "sent_at": NOW,
    }
    return P.NotificationSent(**(defaults | fields))


def payment_received(**fields: Any) -> P.PaymentReceived:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "amount": "2.50",
        "received_at": NOW,
    }
    return P.PaymentReceived(**(defaults | fields))


def order_shipped(**fields: Any) -> P.OrderShipped:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "tracking_number": "1Z-999-AA1",
        "shipped_at": NOW,
    }
    return P.OrderShipped(**(defaults | fields))


def order_delivered(**fields: Any) -> P.OrderDelivered:
    defaults: dict[str, Any] = {"order_id": order_id(), "user_id": USER, "delivered_at": NOW}
    return P.OrderDelivered(**(defaults | fields))


def reserve_stock(**fields: Any) -> P.ReserveStock:
    defaults: dict[str, Any] = {
        "order_id": order_id(),
        "user_id": USER,
        "items": stock_lines(),
        "total": "2.50",
    }
    return P.ReserveStock(**(defaults | fields))


def release_stock(**fields: Any) -> P.ReleaseStock:
    return P.ReleaseStock(**({"order_id": order_id()} | fields))


def charge_payment(**fields: Any) -> P.ChargePayment:
    defaults: dict[str, Any] = {"order_id": order_id(), "user_id": USER, "amount": "2.50"}
    return P.ChargePayment(**(defaults | fields))


def refund_payment(**fields: Any) -> P.RefundPayment:
    return P.RefundPayment(**({"order_id": order_id(), "user_id": USER} | fields))


def _reply(kind: type[P.CommandReply]) -> Callable[..., P.Payload]:
    def build(**fields: Any) -> P.Payload:
        # A failure: its reason is a string (a success's is null).
        defaults: dict[str, Any] = {
            "order_id": order_id(),
            "command_id": uuid.uuid4(),
            "succeeded": False,
            "reason": "insufficient_stock",
        }
        return kind(**(defaults | fields))

    return build


def saga_completed(**fields: Any) -> P.SagaCompleted:
    return P.SagaCompleted(**({"order_id": order_id()} | fields))


def saga_compensated(**fields: Any) -> P.SagaCompensated:
    defaults: dict[str, Any] = {"order_id": order_id(), "reason": "payment_failed: no_account"}
    return P.SagaCompensated(**(defaults | fields))


BUILDERS: dict[str, Callable[..., P.Payload]] = {
    "OrderPlaced": order_placed,
    "OrderConfirmed": order_confirmed,
    "OrderCancelled": order_cancelled,
    "PaymentRejected": payment_rejected,
    "PaymentReceived": payment_received,
    "OrderShipped": order_shipped,
    "OrderDelivered": order_delivered,
    "StockReserved": stock_reserved,
    "StockReservationFailed": stock_reservation_failed,
    "StockReleased": stock_released,
    "PaymentProcessed": payment_processed,
    "PaymentFailed": payment_failed,
    "PaymentRefunded": payment_refunded,
    "UserRegistered": user_registered,
    "UserProfileUpdated": user_profile_updated,
    "ProductCreated": product_created,
    "ProductPriceChanged": product_price_changed,
    "ProductRenamed": product_renamed,
    "NotificationSent": notification_sent,
    "ReserveStock": reserve_stock,
    "ReleaseStock": release_stock,
    "ChargePayment": charge_payment,
    "RefundPayment": refund_payment,
    "ReserveStockReply": _reply(P.ReserveStockReply),
    "ReleaseStockReply": _reply(P.ReleaseStockReply),
    "ChargePaymentReply": _reply(P.ChargePaymentReply),
    "RefundPaymentReply": _reply(P.RefundPaymentReply),
    "SagaCompleted": saga_completed,
    "SagaCompensated": saga_compensated,
}


def sample(event: str, /, **fields: Any) -> P.Payload:
    """A valid current-version body of the declared event ``event``."""
    declaration.spec(event)  # an undeclared name fails here, not with a KeyError below
    return BUILDERS[event](**fields)
