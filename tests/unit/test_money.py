"""Money: a two-place Decimal inside, a decimal string on the wire."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from polysaga.money import MONEY_PATTERN, format_money, parse_money


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", "0.00"), ("12", "12.00"), ("12.3", "12.30"), ("12.34", "12.34"), ("1e2", "100.00")],
)
def test_parse_money_gives_two_places(text: str, value: str) -> None:
    parsed = parse_money(text)

    assert parsed == Decimal(value)
    assert str(parsed) == value


@pytest.mark.parametrize(
    "text", ["-1", "-0.01", "NaN", "sNaN", "Infinity", "-Infinity", "abc", "", "1,00", "12.3.4"]
)
def test_parse_money_refuses_negative_non_finite_and_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_money(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0"), "0.00"),
        (Decimal("7"), "7.00"),
        (Decimal("12.3"), "12.30"),
        (Decimal("0.125"), "0.12"),  # half-even
        (Decimal("0.135"), "0.14"),
    ],
)
def test_format_money_always_has_two_places(value: Decimal, text: str) -> None:
    assert format_money(value) == text


@pytest.mark.parametrize("text", ["0.00", "0.05", "12.34", "999999999999.99"])
def test_format_of_parse_round_trips_and_matches_the_wire_pattern(text: str) -> None:
    assert format_money(parse_money(text)) == text
    assert re.match(MONEY_PATTERN, text)


def test_parse_money_refuses_a_huge_amount_with_value_error() -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_money("1e30")


def test_negative_zero_is_refused_rather_than_written_with_a_sign() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        parse_money("-0")
