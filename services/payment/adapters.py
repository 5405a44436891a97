"""Payment's PostgreSQL adapter. A charge is one conditional UPDATE (``balance >= amount``),
so a balance never goes negative; the payments table's primary key is the order id, so an
order is charged at most once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payment.domain import PaymentStatus
from payment.ports import Payment
from polysaga.persistence.database import Migration

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
)


class PostgresPaymentStore:
    """Payment's store (``payment.ports.PaymentStore``) on one connection, inside the
    transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_order(self, order_id: str) -> None:
        await self._conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:id))"), {"id": f"payment:{order_id}"}
        )

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
