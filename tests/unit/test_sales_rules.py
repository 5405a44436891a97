"""The sales projection's rules without I/O: what one confirmation counts, on which day, and
a digest that tells two projections apart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from event_samples import order_confirmed, order_lines
from fakes.sales import FakeSalesLedger, sales_unit
from polysaga.events.envelope import new_event
from sales.application import customer_sales, day_sales, on_order_confirmed, product_sales
from sales.domain import CustomerSales, DaySales, ProductSales, Sale, digest

CONFIRMED = order_confirmed(
    order_id=UUID("5b0c9d6e-2f1a-4a7e-9a3b-0c4d5e6f7a8b"),
    user_id="u-1",
    total="13.50",
    items=order_lines(("PEAR", 2, "1.25"), ("APPLE", 3, "2.00"), ("PEAR", 4, "1.25")),
)


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


async def test_a_confirmed_order_is_counted_once_and_read_back_per_product_customer_and_day() -> (
    None
):
    ledger = FakeSalesLedger()
    event = new_event(CONFIRMED)
    assert await on_order_confirmed(event, ledger) is True
    assert await on_order_confirmed(event, ledger) is False  # a redelivery counts nothing
    unit = sales_unit(ledger)
    assert await product_sales(unit, "PEAR") == ProductSales("PEAR", 6, Decimal("7.50"))
    assert await customer_sales(unit, "u-1") == CustomerSales("u-1", 1, Decimal("13.50"))
    day = event.time.astimezone(UTC).date()
    assert await day_sales(unit, day) == DaySales(day, 1, 9, Decimal("13.50"))
    assert unit.commits == 0  # queries change nothing
