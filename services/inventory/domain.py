"""Inventory's rules, free of I/O: what a reservation holds and which state allows what."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"  # stock held for the order
    FAILED = "FAILED"  # not enough stock; nothing held
    RELEASED = "RELEASED"  # held, then given back (compensation)
    CANCELLED = "CANCELLED"  # the cancel arrived first: a later OrderPlaced reserves nothing


def quantities_by_sku(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(SKU, quantity) lines merged per SKU, sorted, so locks are taken in one order
    everywhere."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        merged[sku] = merged.get(sku, 0) + quantity
    return dict(sorted(merged.items()))


def may_reserve(existing: ReservationStatus | None) -> bool:
    return existing is None


def must_release(existing: ReservationStatus | None) -> bool:
    return existing is ReservationStatus.RESERVED
