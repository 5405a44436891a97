"""Money is a Decimal with two places on the inside and a decimal string on the wire."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

import msgspec

from polysaga.api_types import whole

CENT = Decimal("0.01")
# The largest amount any store holds (numeric(14, 2)); totals above it are refused up front.
MAX_AMOUNT = Decimal("999999999999.99")
# Up to two places on input ("12", "12.3", "12.34"); always two on output.
MONEY_PATTERN = whole(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?")
MoneyText = Annotated[
    str,
    msgspec.Meta(
        pattern=MONEY_PATTERN, description='Decimal string, e.g. "12.34"', examples=["12.34"]
    ),
]


def parse_money(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite() or value.is_signed():
        raise ValueError(f"not a non-negative amount: {text!r}")
    try:
        return value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:  # more digits than the decimal context holds
        raise ValueError(f"amount out of range: {text!r}") from exc


def format_money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))
