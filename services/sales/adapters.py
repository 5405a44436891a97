"""The sales projection's PostgreSQL adapter. Every figure row carries the generation it
belongs to; ``sales_meta`` names the live one. A confirmed order is counted by one statement:
its row in ``sales_orders`` (primary key: generation and order) and, only if that row was
new, its additions to the product, customer and day totals, so an order is counted once per
generation however often its confirmation arrives (a replay, a re-publication).

The live consumer reads the generation under a share lock on ``sales_meta``; a rebuild
swaps it under an exclusive one, so no live write lands in a generation being retired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga.persistence.database import Migration
from sales.domain import CustomerSales, DaySales, ProductSales, Sale

MIGRATIONS = (
    Migration(
        "sales",
        1,
        (
            "CREATE TABLE sales_meta ("
            " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
            " generation integer NOT NULL, previous integer)",
            "INSERT INTO sales_meta (generation) VALUES (1)",
            "CREATE TABLE sales_orders ("
            " generation integer NOT NULL, order_id uuid NOT NULL, user_id text NOT NULL,"
            " day date NOT NULL, total numeric(14, 2) NOT NULL,"
            " PRIMARY KEY (generation, order_id))",
            "CREATE TABLE sales_products ("
            " generation integer NOT NULL, sku text NOT NULL, units bigint NOT NULL,"
            " revenue numeric(18, 2) NOT NULL, PRIMARY KEY (generation, sku))",
            "CREATE TABLE sales_customers ("
            " generation integer NOT NULL, user_id text NOT NULL, orders bigint NOT NULL,"
            " spent numeric(18, 2) NOT NULL, PRIMARY KEY (generation, user_id))",
            "CREATE TABLE sales_days ("
            " generation integer NOT NULL, day date NOT NULL, orders bigint NOT NULL,"
            " units bigint NOT NULL, revenue numeric(18, 2) NOT NULL,"
            " PRIMARY KEY (generation, day))",
        ),
    ),
)

# One round trip; every part runs only if the order's row was new (data-modifying CTEs all
# execute, so each is gated on the first). Lines are sorted by SKU: concurrent counts take
# their row locks in one order.
_COUNT = text(
    "WITH counted AS ("
    "  INSERT INTO sales_orders (generation, order_id, user_id, day, total)"
    "  VALUES (:g, :order_id, :user_id, :day, :total) ON CONFLICT DO NOTHING RETURNING 1),"
    " products AS ("
    "  INSERT INTO sales_products (generation, sku, units, revenue)"
    "  SELECT :g, l.sku, l.units, l.revenue FROM unnest(CAST(:skus AS text[]),"
    "   CAST(:units AS bigint[]), CAST(:revenues AS numeric[])) AS l(sku, units, revenue)"
    "  WHERE EXISTS (SELECT 1 FROM counted)"
    "  ON CONFLICT (generation, sku) DO UPDATE SET units = sales_products.units + EXCLUDED.units,"
    "  revenue = sales_products.revenue + EXCLUDED.revenue RETURNING 1),"
    " customers AS ("
    "  INSERT INTO sales_customers (generation, user_id, orders, spent)"
    "  SELECT :g, :user_id, 1, :total WHERE EXISTS (SELECT 1 FROM counted)"
    "  ON CONFLICT (generation, user_id) DO UPDATE SET orders = sales_customers.orders + 1,"
    "  spent = sales_customers.spent + EXCLUDED.spent RETURNING 1),"
    " days AS ("
    "  INSERT INTO sales_days (generation, day, orders, units, revenue)"
    "  SELECT :g, :day, 1, :order_units, :total WHERE EXISTS (SELECT 1 FROM counted)"
    "  ON CONFLICT (generation, day) DO UPDATE SET orders = sales_days.orders + 1,"
    "  units = sales_days.units + EXCLUDED.units, revenue = sales_days.revenue + EXCLUDED.revenue"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM counted) AS counted, (SELECT count(*) FROM products)"
    " + (SELECT count(*) FROM customers) + (SELECT count(*) FROM days) AS rows"
)

_TABLES = ("sales_orders", "sales_products", "sales_customers", "sales_days")
ZERO = Decimal("0.00")


class PostgresSalesStore:
    """The projection's tables (``sales.ports.SalesLedger``, and the generations a rebuild
    works with) inside one caller-owned transaction. ``generation`` fixes the
    generation written and read (a rebuild's); None means the live one."""

    def __init__(self, conn: AsyncConnection, generation: int | None = None) -> None:
        self._conn = conn
        self._generation = generation

    async def live_generation(self, *, lock: bool = False) -> int:
        """The live generation; with ``lock``, held (shared) until the transaction ends."""
        suffix = " FOR SHARE" if lock else ""
        row = (await self._conn.execute(text(f"SELECT generation FROM sales_meta{suffix}"))).one()
        return int(row.generation)

    async def _gen(self, *, writing: bool) -> int:
        if self._generation is not None:
            return self._generation
        return await self.live_generation(lock=writing)

    async def count(self, sale: Sale) -> bool:
        """Add the order to every total; False (nothing changed) if it was counted already."""
        row = (
            await self._conn.execute(
                _COUNT,
                {
                    "g": await self._gen(writing=True),
                    "order_id": sale.order_id,
                    "user_id": sale.user_id,
                    "day": sale.day,
                    "total": sale.total,
                    "order_units": sale.units,
                    "skus": [line.sku for line in sale.lines],
                    "units": [line.units for line in sale.lines],
                    "revenues": [line.revenue for line in sale.lines],
                },
            )
        ).one()
        return int(row.counted) == 1

    async def product(self, sku: str) -> ProductSales:
        row = (
            await self._conn.execute(
                text(
                    "SELECT units, revenue FROM sales_products WHERE generation = :g AND sku = :k"
                ),
                {"g": await self._gen(writing=False), "k": sku},
            )
        ).first()
        if row is None:
            return ProductSales(sku, 0, ZERO)
        return ProductSales(sku, int(row.units), row.revenue)

    async def customer(self, user_id: str) -> CustomerSales:
        row = (
            await self._conn.execute(
                text(
                    "SELECT orders, spent FROM sales_customers"
                    " WHERE generation = :g AND user_id = :u"
                ),
                {"g": await self._gen(writing=False), "u": user_id},
            )
        ).first()
        if row is None:
            return CustomerSales(user_id, 0, ZERO)
        return CustomerSales(user_id, int(row.orders), row.spent)

    async def day(self, day: date) -> DaySales:
        row = (
            await self._conn.execute(
                text(
                    "SELECT orders, units, revenue FROM sales_days"
                    " WHERE generation = :g AND day = :d"
                ),
                {"g": await self._gen(writing=False), "d": day},
            )
        ).first()
        if row is None:
            return DaySales(day, 0, 0, ZERO)
        return DaySales(day, int(row.orders), int(row.units), row.revenue)

    async def everything(
        self,
    ) -> tuple[list[ProductSales], list[CustomerSales], list[DaySales]]:
        g = await self._gen(writing=False)
        products = await self._conn.execute(
            text("SELECT sku, units, revenue FROM sales_products WHERE generation = :g"), {"g": g}
        )
        customers = await self._conn.execute(
            text("SELECT user_id, orders, spent FROM sales_customers WHERE generation = :g"),
            {"g": g},
        )
        days = await self._conn.execute(
            text("SELECT day, orders, units, revenue FROM sales_days WHERE generation = :g"),
            {"g": g},
        )
        return (
            [ProductSales(r.sku, int(r.units), r.revenue) for r in products],
            [CustomerSales(r.user_id, int(r.orders), r.spent) for r in customers],
            [DaySales(r.day, int(r.orders), int(r.units), r.revenue) for r in days],
        )

    async def orders_counted(self) -> int:
        row = (
            await self._conn.execute(
                text("SELECT count(*) AS n FROM sales_orders WHERE generation = :g"),
                {"g": await self._gen(writing=False)},
            )
        ).one()
        return int(row.n)

    # --- generations (rebuild) -------------------------------------------------------------

    async def generations(self) -> list[int]:
        rows = await self._conn.execute(
            text("SELECT DISTINCT generation FROM sales_orders ORDER BY generation")
        )
        live = await self.live_generation()
        return sorted({live, *(int(r.generation) for r in rows)})

    async def next_generation(self) -> int:
        return max(await self.generations()) + 1

    async def lock_for_swap(self) -> int:
        """Hold the live pointer exclusively (live writers wait); returns the live one."""
        row = (await self._conn.execute(text("SELECT generation FROM sales_meta FOR UPDATE"))).one()
        return int(row.generation)

    async def swap(self, generation: int, previous: int) -> None:
        await self._conn.execute(
            text("UPDATE sales_meta SET generation = :g, previous = :p"),
            {"g": generation, "p": previous},
        )

    async def drop(self, generations: Sequence[int]) -> None:
        if not generations:
            return
        for table in _TABLES:
            await self._conn.execute(
                text(f"DELETE FROM {table} WHERE generation = ANY(:gs)"), {"gs": list(generations)}
            )
