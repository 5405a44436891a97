"""The body of every event, one msgspec Struct per event type and version: the contract
between producer and consumers. The declaration names each event's Struct; producers build
them, and the consumer edge decodes a body with the Struct its ``ce-type`` names, so a
payload of the wrong shape, type or size never reaches a handler.

Strict on purpose: unknown fields are refused, every string and list is bounded, money is a
non-negative decimal string within what the stores hold, ids are UUIDs where the producer
makes UUIDs, times carry an offset, and no text holds a control character.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from polysaga.api_types import VISIBLE_TEXT_PATTERN, Identifier, Quantity, Sku, whole
from polysaga.money import MoneyText

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

Money = MoneyText
UserId = Identifier
Time = Annotated[datetime, msgspec.Meta(tz=True)]
# Versions are PostgreSQL integers wherever a replica stores them.
Version = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
# "stock_unavailable: unknown_sku: <up to 100 SKUs>" is the longest a producer writes.
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
PersonName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=VISIBLE_TEXT_PATTERN)
]
ProductName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=VISIBLE_TEXT_PATTERN)
]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^\s@]+@[^\s@]+$")]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
# An amount in cents up to the largest amount any store holds (999999999999.99).
Cents = Annotated[int, msgspec.Meta(ge=0, le=99_999_999_999_999)]


class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An event body. Beyond the field types: no control character in any text (a newline
    in an address would become a mail header), and every time convertible to UTC."""

    def __post_init__(self) -> None:
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if isinstance(value, str) and _CONTROL_CHARACTER.search(value):
                raise ValueError(f"`{field}` holds a control character")
            if isinstance(value, datetime):
                try:
                    value.astimezone(UTC)
                except OverflowError:
                    raise ValueError(f"`{field}` is out of range in UTC") from None


class OrderLine(Payload, frozen=True):
    sku: Sku
    quantity: Quantity
    unit_price: Money


class StockLine(Payload, frozen=True):
    sku: Sku
    quantity: Quantity


OrderLines = Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=100)]
StockLines = Annotated[list[StockLine], msgspec.Meta(min_length=1, max_length=100)]
# A carrier's tracking number: letters, digits and . _ / - (no spaces, nothing invisible).
TrackingNumber = Annotated[
    str, msgspec.Meta(max_length=64, pattern=whole(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}"))
]
# Who runs an order's saga (``polysaga.events.saga_style``). Events that carry it leave it
# out for a choreographed order (omit_defaults), so those bodies are what they always were.
SagaStyleName = Literal["choreography", "orchestration"]


# --- orders ---------------------------------------------------------------------------


class OrderPlaced(Payload, frozen=True, omit_defaults=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money
    placed_at: Time
    deadline_at: Time
    saga: SagaStyleName = "choreography"


class OrderConfirmed(Payload, frozen=True, omit_defaults=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money
    saga: SagaStyleName = "choreography"


class OrderCancelled(Payload, frozen=True, omit_defaults=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money
    reason: Reason
    saga: SagaStyleName = "choreography"


class PaymentReceived(Payload, frozen=True):
    """The order took the saga's payment as its own (it matched the order: user and total)."""

    order_id: UUID
    user_id: UserId
    amount: Money
    received_at: Time


class OrderShipped(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    tracking_number: TrackingNumber
    shipped_at: Time


class OrderDelivered(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    delivered_at: Time


class PaymentRejected(Payload, frozen=True):
    """The order service could not match a PaymentProcessed with an order of its own (no
    such order, another user, another amount): the charge it reports is to be given back."""

    order_id: UUID
    user_id: UserId
    amount: Money
    reason: Reason


# --- inventory --------------------------------------------------------------------------


class StockReserved(Payload, frozen=True, omit_defaults=True):
    order_id: UUID
    user_id: UserId
    items: StockLines
    total: Money
    saga: SagaStyleName = "choreography"


class StockReservationFailed(Payload, frozen=True):
    order_id: UUID
    reason: Reason


class StockReleased(Payload, frozen=True):
    order_id: UUID
    items: StockLines


# --- payments ---------------------------------------------------------------------------


class PaymentProcessedV1(Payload, frozen=True):
    """PaymentProcessed as version 1 carried it: the amount in integer cents."""

    order_id: UUID
    user_id: UserId
    amount_cents: Cents


class PaymentProcessed(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    amount: Money


class PaymentFailed(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    reason: Reason


class PaymentRefunded(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    amount: Money


# --- users ------------------------------------------------------------------------------


class UserRegistered(Payload, frozen=True):
    """The whole profile at version 1."""

    user_id: UUID
    name: PersonName
    email: Email
    version: Version


class UserProfileUpdated(Payload, frozen=True):
    """The whole profile after a change, at its new version."""

    user_id: UUID
    name: PersonName
    email: Email
    version: Version


# --- catalog ----------------------------------------------------------------------------


class ProductCreated(Payload, frozen=True):
    sku: Sku
    name: ProductName
    price: Money
    version: Version


class ProductPriceChanged(Payload, frozen=True):
    sku: Sku
    price: Money
    previous_price: Money
    version: Version


class ProductRenamed(Payload, frozen=True):
    sku: Sku
    name: ProductName
    previous_name: ProductName
    version: Version


# --- notifications ----------------------------------------------------------------------


class NotificationSent(Payload, frozen=True):
    order_id: UUID
    outcome: Literal["confirmed", "cancelled"]
    to: Email
    message_id: MessageId
    sent_at: Time


# --- the orchestrated saga: commands to one participant, its replies, the outcome -------


class ReserveStock(Payload, frozen=True):
    """Hold the order's stock, all or nothing (inventory)."""

    order_id: UUID
    user_id: UserId
    items: StockLines
    total: Money


class ReleaseStock(Payload, frozen=True):
    """Give back whatever inventory holds for the order (it knows what)."""

    order_id: UUID


class ChargePayment(Payload, frozen=True):
    """Charge the order's total; payment charges it only if OrderPlaced said so."""

    order_id: UUID
    user_id: UserId
    amount: Money


class RefundPayment(Payload, frozen=True):
    """Give back the order's charge, if there is one."""

    order_id: UUID
    user_id: UserId


class CommandReply(Payload, frozen=True):
    """How a command went: ``command_id`` is the command's ce-id; ``reason`` is why it
    failed (null when it succeeded)."""

    order_id: UUID
    command_id: UUID
    succeeded: bool
    reason: Reason | None


class ReserveStockReply(CommandReply, frozen=True):
    pass


class ReleaseStockReply(CommandReply, frozen=True):
    pass


class ChargePaymentReply(CommandReply, frozen=True):
    pass


class RefundPaymentReply(CommandReply, frozen=True):
    pass


class SagaCompleted(Payload, frozen=True):
    """The orchestrated saga's steps all succeeded: the order is to be confirmed."""

    order_id: UUID


class SagaCompensated(Payload, frozen=True):
    """The orchestrated saga was undone: the order is to be cancelled, for ``reason``."""

    order_id: UUID
    reason: Reason


SagaCommand = ReserveStock | ReleaseStock | ChargePayment | RefundPayment
SagaReply = ReserveStockReply | ReleaseStockReply | ChargePaymentReply | RefundPaymentReply


# What an order's terminal events have in common, for consumers that treat them alike.
OrderOutcomeEvent = OrderConfirmed | OrderCancelled
OrderEvent = OrderPlaced | OrderConfirmed | OrderCancelled
# Everything an order's own event stream holds, its whole life.
OrderLifeEvent = OrderEvent | PaymentReceived | OrderShipped | OrderDelivered
UserProfileEvent = UserRegistered | UserProfileUpdated
