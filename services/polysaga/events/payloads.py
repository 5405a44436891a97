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

from polysaga.api_types import VISIBLE_TEXT_PATTERN, Identifier, Quantity, Sku
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


# --- orders ---------------------------------------------------------------------------


class OrderPlaced(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money
    placed_at: Time
    deadline_at: Time


class OrderConfirmed(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money


class OrderCancelled(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    items: OrderLines
    total: Money
    reason: Reason


class PaymentRejected(Payload, frozen=True):
    """The order service could not match a PaymentProcessed with an order of its own (no
    such order, another user, another amount): the charge it reports is to be given back."""

    order_id: UUID
    user_id: UserId
    amount: Money
    reason: Reason


# --- inventory --------------------------------------------------------------------------


class StockReserved(Payload, frozen=True):
    order_id: UUID
    user_id: UserId
    items: StockLines
    total: Money


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


# What an order's terminal events have in common, for consumers that treat them alike.
OrderOutcomeEvent = OrderConfirmed | OrderCancelled
OrderEvent = OrderPlaced | OrderConfirmed | OrderCancelled
UserProfileEvent = UserRegistered | UserProfileUpdated
