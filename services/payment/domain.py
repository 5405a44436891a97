"""Payment's rules, free of I/O: at most one payment record per order, and which state
allows a charge or a refund."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    CHARGED = "CHARGED"
    FAILED = "FAILED"  # not enough money (or no account); nothing taken
    REFUNDED = "REFUNDED"  # charged, then given back (compensation)
    CANCELLED = "CANCELLED"  # the cancel arrived first: a later StockReserved charges nothing


def may_charge(existing: PaymentStatus | None) -> bool:
    return existing is None


def must_refund(existing: PaymentStatus | None) -> bool:
    return existing is PaymentStatus.CHARGED
