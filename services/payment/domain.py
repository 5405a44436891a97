"""Payment's rules, free of I/O: at most one payment record per order, which state allows a
charge or a refund, and what a charge must match. Payment charges only what it learned from
the order service's own OrderPlaced (the order, its user, its total): a StockReserved that
names another user or total, or an order payment never heard of, moves no money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PaymentStatus(StrEnum):
    CHARGED = "CHARGED"
    FAILED = "FAILED"  # not enough money (or no account); nothing taken
    REFUNDED = "REFUNDED"  # charged, then given back (compensation)
    CANCELLED = "CANCELLED"  # the cancel arrived first: a later StockReserved charges nothing


@dataclass(frozen=True)
class PlacedOrder:
    """What the order service said when the order was placed: the only charge it allows."""

    order_id: str
    user_id: str
    total: Decimal


@dataclass(frozen=True)
class ReservationClaim:
    """A StockReserved as it arrived: what inventory says the order is."""

    event_id: str
    user_id: str
    total: Decimal
    trace_headers: dict[str, str]


def may_charge(existing: PaymentStatus | None) -> bool:
    return existing is None


def must_refund(existing: PaymentStatus | None) -> bool:
    return existing is PaymentStatus.CHARGED


def claim_mismatch(order: PlacedOrder, claim: ReservationClaim) -> str | None:
    """Why a reservation does not match the order it names, or None when it does."""
    if claim.user_id != order.user_id:
        return "user_mismatch"
    if claim.total != order.total:
        return "total_mismatch"
    return None


def is_the_charge(
    status: PaymentStatus | None, charged_user: str, charged: Decimal, user_id: str, amount: Decimal
) -> bool:
    """Whether a charge someone refers to (user, amount) is the one payment holds."""
    return status is PaymentStatus.CHARGED and (charged_user, charged) == (user_id, amount)
