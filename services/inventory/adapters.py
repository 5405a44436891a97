"""Inventory's PostgreSQL adapter. A reservation is one conditional UPDATE over all of an
order's SKUs (``available >= quantity`` for each), so stock can never be oversold.

Every change to several stock rows first locks them in SKU order (``lock_stock``): two
orders that share SKUs then queue on the first one they share instead of each holding a row
the other waits for. ``UPDATE … FROM unnest(…)`` alone locks in whatever order its join
produces, and deadlocked under concurrent multi-SKU orders."""

from __future__ import annotations

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from inventory.domain import ReservationStatus
from inventory.ports import Reservation, StockLevel
from polysaga.persistence.database import Migration
from polysaga.persistence.locks import lock_until_commit

MIGRATIONS = (
    Migration(
        "inventory",
        1,
        (
            "CREATE TABLE stock ("
            " sku text PRIMARY KEY,"
            " available integer NOT NULL CHECK (available >= 0),"
            " reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE reservations ("
            " order_id uuid PRIMARY KEY, status text NOT NULL, items jsonb NOT NULL,"
            " reason text, updated_at timestamptz NOT NULL DEFAULT now())",
        ),
    ),
)


class PostgresInventoryStore:
    """Inventory's store (``inventory.ports.InventoryStore``) on one connection, inside the
    transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_order(self, order_id: str) -> None:
        """Serialise everything done for one order (its placed and cancelled events may be
        handled by two consumer instances at once)."""
        await lock_until_commit(self._conn, "inventory", order_id)

    async def reservation(self, order_id: str) -> Reservation | None:
        row = (
            await self._conn.execute(
                text(
                    "SELECT order_id::text AS order_id, status, items::text AS items, reason"
                    " FROM reservations WHERE order_id = :id"
                ),
                {"id": order_id},
            )
        ).first()
        if row is None:
            return None
        return Reservation(
            row.order_id, ReservationStatus(row.status), msgspec.json.decode(row.items), row.reason
        )

    async def lock_stock(self, skus: list[str]) -> None:
        """Lock these SKUs' stock rows, in SKU order, until the transaction ends."""
        await self._conn.execute(
            text("SELECT sku FROM stock WHERE sku = ANY(:skus) ORDER BY sku FOR UPDATE"),
            {"skus": sorted(skus)},
        )

    async def take(self, quantities: dict[str, int]) -> bool:
        """All or nothing: hold every SKU's quantity, or change nothing and return False."""
        await self.lock_stock(list(quantities))
        async with self._conn.begin_nested() as savepoint:
            result = await self._conn.execute(
                text(
                    "UPDATE stock s SET available = s.available - v.qty,"
                    " reserved = s.reserved + v.qty, updated_at = now()"
                    " FROM unnest(CAST(:skus AS text[]), CAST(:qtys AS integer[])) AS v(sku, qty)"
                    " WHERE s.sku = v.sku AND s.available >= v.qty"
                ),
                {"skus": list(quantities), "qtys": list(quantities.values())},
            )
            if result.rowcount != len(quantities):
                await savepoint.rollback()
                return False
        return True

    async def give_back(self, quantities: dict[str, int]) -> None:
        await self.lock_stock(list(quantities))
        await self._conn.execute(
            text(
                "UPDATE stock s SET available = s.available + v.qty,"
                " reserved = s.reserved - v.qty, updated_at = now()"
                " FROM unnest(CAST(:skus AS text[]), CAST(:qtys AS integer[])) AS v(sku, qty)"
                " WHERE s.sku = v.sku"
            ),
            {"skus": list(quantities), "qtys": list(quantities.values())},
        )

    async def record(
        self,
        order_id: str,
        status: ReservationStatus,
        quantities: dict[str, int],
        reason: str | None = None,
    ) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO reservations (order_id, status, items, reason)"
                " VALUES (:id, :status, CAST(:items AS jsonb), :reason)"
                " ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,"
                " reason = coalesce(EXCLUDED.reason, reservations.reason), updated_at = now()"
            ),
            {
                "id": order_id,
                "status": status.value,
                "items": msgspec.json.encode(quantities).decode(),
                "reason": reason,
            },
        )

    async def missing_skus(self, skus: list[str]) -> list[str]:
        rows = await self._conn.execute(
            text("SELECT sku FROM stock WHERE sku = ANY(:skus)"), {"skus": skus}
        )
        known = {r.sku for r in rows}
        return [sku for sku in skus if sku not in known]

    async def set_available(self, sku: str, available: int) -> StockLevel:
        row = (
            await self._conn.execute(
                text(
                    "INSERT INTO stock (sku, available) VALUES (:sku, :available)"
                    " ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available,"
                    " updated_at = now() RETURNING sku, available, reserved"
                ),
                {"sku": sku, "available": available},
            )
        ).one()
        return StockLevel(row.sku, row.available, row.reserved)

    async def level(self, sku: str) -> StockLevel | None:
        row = (
            await self._conn.execute(
                text("SELECT sku, available, reserved FROM stock WHERE sku = :sku"), {"sku": sku}
            )
        ).first()
        return None if row is None else StockLevel(row.sku, row.available, row.reserved)
