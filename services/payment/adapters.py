"""Payment's PostgreSQL adapter. A charge is one conditional UPDATE (``balance >= amount``),
so a balance never goes negative; the payments table's primary key is the order id, so an
order is charged at most once. ``placed_orders`` holds what each OrderPlaced said (the only
charge allowed), ``awaited_orders`` the reservations that arrived before it."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payment.domain import PaymentStatus, PlacedOrder, ReservationClaim
from payment.ports import Payment
from polysaga.persistence.database import Migration
from polysaga.persistence.locks import lock_until_commit

MIGRATIONS = (
    Migration(
        "payment",
        1,
        (
            "CREATE TABLE accounts ("
            " user_id text PRIMARY KEY,"
            " balance numeric(14, 2) NOT NULL CHECK (balance >= 0),"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE payments ("
            " order_id uuid PRIMARY KEY, user_id text NOT NULL,"
            " amount numeric(14, 2) NOT NULL, status text NOT NULL, reason text,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            "CREATE INDEX payments_user ON payments (user_id)",
        ),
    ),
    Migration(
        "payment",
        2,
        (
            # What each OrderPlaced said: the one charge payment allows for the order.
            "CREATE TABLE placed_orders ("
            " order_id uuid PRIMARY KEY, user_id text NOT NULL,"
            " total numeric(14, 2) NOT NULL CHECK (total >= 0),"
            " learned_at timestamptz NOT NULL DEFAULT now())",
            # Reservations that came before their OrderPlaced (two streams, no order between
            # them): charged, if they match, once it comes; a forged one waits until pruned.
            "CREATE TABLE awaited_orders ("
            " order_id uuid NOT NULL, event_id text NOT NULL, user_id text NOT NULL,"
            " total numeric(14, 2) NOT NULL, trace_headers jsonb NOT NULL,"
            " received_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (order_id, event_id))",
            "CREATE INDEX awaited_orders_received ON awaited_orders (received_at)",
        ),
    ),
)


class PostgresPaymentStore:
    """Payment's store (``payment.ports.PaymentStore``) on one connection, inside the
    transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_order(self, order_id: str) -> None:
        await lock_until_commit(self._conn, "payment", order_id)

    async def payment(self, order_id: str) -> Payment | None:
        row = (
            await self._conn.execute(
                text(
                    "SELECT order_id::text AS order_id, user_id, amount, status, reason,"
                    " created_at, updated_at FROM payments WHERE order_id = :id"
                ),
                {"id": order_id},
            )
        ).first()
        if row is None:
            return None
        return Payment(
            row.order_id,
            row.user_id,
            Decimal(row.amount),
            PaymentStatus(row.status),
            row.reason,
            row.created_at,
            row.updated_at,
        )

    async def learn_order(self, order: PlacedOrder) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO placed_orders (order_id, user_id, total)"
                " VALUES (:id, :user, :total) ON CONFLICT (order_id) DO NOTHING"
            ),
            {"id": order.order_id, "user": order.user_id, "total": order.total},
        )

    async def placed_order(self, order_id: str) -> PlacedOrder | None:
        row = (
            await self._conn.execute(
                text(
                    "SELECT order_id::text AS order_id, user_id, total FROM placed_orders"
                    " WHERE order_id = :id"
                ),
                {"id": order_id},
            )
        ).first()
        return None if row is None else PlacedOrder(row.order_id, row.user_id, Decimal(row.total))

    async def await_order(self, order_id: str, claim: ReservationClaim) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO awaited_orders (order_id, event_id, user_id, total, trace_headers)"
                " VALUES (:id, :event, :user, :total, CAST(:trace AS jsonb))"
                " ON CONFLICT (order_id, event_id) DO NOTHING"
            ),
            {
                "id": order_id,
                "event": claim.event_id,
                "user": claim.user_id,
                "total": claim.total,
                "trace": msgspec.json.encode(claim.trace_headers).decode(),
            },
        )

    async def take_awaited(self, order_id: str) -> list[ReservationClaim]:
        """The reservations that waited for this order, oldest first; they wait no more."""
        rows = await self._conn.execute(
            text(
                "DELETE FROM awaited_orders WHERE order_id = :id"
                " RETURNING event_id, user_id, total, trace_headers::text AS trace, received_at"
            ),
            {"id": order_id},
        )
        return [
            ReservationClaim(r.event_id, r.user_id, Decimal(r.total), msgspec.json.decode(r.trace))
            for r in sorted(rows, key=lambda r: (r.received_at, r.event_id))
        ]

    async def prune_awaited(self, older_than_s: float) -> int:
        """Forget reservations whose order never came (forged, or for a lost order)."""
        result = await self._conn.execute(
            text(
                "DELETE FROM awaited_orders WHERE received_at < now() - make_interval(secs => :age)"
            ),
            {"age": older_than_s},
        )
        return int(result.rowcount)

    async def debit(self, user_id: str, amount: Decimal) -> bool:
        result = await self._conn.execute(
            text(
                "UPDATE accounts SET balance = balance - :amount, updated_at = now()"
                " WHERE user_id = :user AND balance >= :amount"
            ),
            {"user": user_id, "amount": amount},
        )
        return result.rowcount == 1

    async def credit(self, user_id: str, amount: Decimal) -> None:
        await self._conn.execute(
            text(
                "UPDATE accounts SET balance = balance + :amount, updated_at = now()"
                " WHERE user_id = :user"
            ),
            {"user": user_id, "amount": amount},
        )

    async def has_account(self, user_id: str) -> bool:
        row = (
            await self._conn.execute(
                text("SELECT 1 FROM accounts WHERE user_id = :user"), {"user": user_id}
            )
        ).first()
        return row is not None

    async def record(
        self,
        order_id: str,
        user_id: str,
        amount: Decimal,
        status: PaymentStatus,
        reason: str | None = None,
    ) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO payments (order_id, user_id, amount, status, reason)"
                " VALUES (:id, :user, :amount, :status, :reason)"
                " ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,"
                " reason = coalesce(EXCLUDED.reason, payments.reason), updated_at = now()"
            ),
            {
                "id": order_id,
                "user": user_id,
                "amount": amount,
                "status": status.value,
                "reason": reason,
            },
        )

    async def set_balance(self, user_id: str, balance: Decimal) -> Decimal:
        row = (
            await self._conn.execute(
                text(
                    "INSERT INTO accounts (user_id, balance) VALUES (:user, :balance)"
                    " ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance,"
                    " updated_at = now() RETURNING balance"
                ),
                {"user": user_id, "balance": balance},
            )
        ).one()
        return Decimal(row.balance)

    async def balance(self, user_id: str) -> Decimal | None:
        row = (
            await self._conn.execute(
                text("SELECT balance FROM accounts WHERE user_id = :user"), {"user": user_id}
            )
        ).first()
        return None if row is None else Decimal(row.balance)
