"""The sales projection's rules without I/O: what one confirmation counts, on which day, and
a digest that tells two projections apart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from sales.domain import CustomerSales, DaySales, ProductSales, Sale, digest

CONFIRMED = {
    "order_id": "5b0c9d6e-2f1a-4a7e-9a3b-0c4d5e6f7a8b",
    "user_id": "u-1",
    "total": "13.50",
    "items": [
        {"sku": "PEAR", "quantity": 2, "unit_price": "1.25"},
        {"sku": "APPLE", "quantity": 3, "unit_price": "2.00"},
        {"sku": "PEAR", "quantity": 4, "unit_price": "1.25"},
    ],
}


def test_a_confirmation_counts_each_product_once_at_its_placed_price() -> None:
    sale = Sale.of_confirmation(CONFIRMED, datetime(2026, 5, 4, 10, tzinfo=UTC))
    assert [(line.sku, line.units, line.revenue) for line in sale.lines] == [
        ("APPLE", 3, Decimal("6.00")),
        ("PEAR", 6, Decimal("7.50")),
    ]
    assert (sale.units, sale.total, sale.user_id) == (9, Decimal("13.50"), "u-1")


def test_the_day_is_the_utc_date_of_the_confirmation() -> None:
    late_in_tokyo = datetime(2026, 5, 5, 1, 30, tzinfo=timezone(timedelta(hours=9)))
    assert Sale.of_confirmation(CONFIRMED, late_in_tokyo).day == date(2026, 5, 4)


def test_the_digest_tells_any_difference_and_ignores_row_order() -> None:
    products = [ProductSales("A", 1, Decimal("2.00")), ProductSales("B", 2, Decimal("3.00"))]
    customers = [CustomerSales("u", 2, Decimal("5.00"))]
    days = [DaySales(date(2026, 1, 1), 2, 3, Decimal("5.00"))]
    same = digest(list(reversed(products)), customers, days)
    assert digest(products, customers, days) == same
    changed = [ProductSales("A", 1, Decimal("2.01")), products[1]]
    assert digest(changed, customers, days) != same
    assert digest(products, customers, []) != same
