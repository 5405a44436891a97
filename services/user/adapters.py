"""The user service's PostgreSQL adapter: one row per user, e-mail unique regardless of
case, and every change's events written to the outbox in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga.events.envelope import new_event
from polysaga.persistence import outbox
from polysaga.persistence.database import Migration, is_unique_violation
from user.domain import EmailTakenError, User, UserEvent

MIGRATIONS = (
    Migration(
        "user",
        1,
        (
            "CREATE TABLE users ("
            " user_id uuid PRIMARY KEY,"
            " name text NOT NULL,"
            " email text NOT NULL,"
            " version integer NOT NULL CHECK (version > 0),"
            " created_at timestamptz NOT NULL,"
            " updated_at timestamptz NOT NULL)",
            "CREATE UNIQUE INDEX users_email_unique ON users (lower(email))",
        ),
    ),
)

_COLUMNS = "user_id::text AS user_id, name, email, version, created_at, updated_at"


class PostgresUserStore:
    """The user service's store (``user.ports.UserStore``) on one connection, inside the
    transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        lock = " FOR UPDATE" if for_update else ""
        row = (
            await self._conn.execute(
                text(f"SELECT {_COLUMNS} FROM users WHERE user_id = :id{lock}"), {"id": user_id}
            )
        ).first()
        return None if row is None else _user(row)

    async def add(self, user: User, events: Sequence[UserEvent]) -> None:
        await self._write(
            "INSERT INTO users (user_id, name, email, version, created_at, updated_at)"
            " VALUES (:user_id, :name, :email, :version, :created_at, :updated_at)",
            user,
        )
        await self._publish(events)

    async def save(self, user: User, events: Sequence[UserEvent]) -> None:
        """Write a changed user; the caller read it FOR UPDATE in this transaction."""
        await self._write(
            "UPDATE users SET name = :name, email = :email, version = :version,"
            " updated_at = :updated_at WHERE user_id = :user_id",
            user,
        )
        await self._publish(events)

    async def _write(self, statement: str, user: User) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    text(statement),
                    {
                        "user_id": user.user_id,
                        "name": user.name,
                        "email": user.email,
                        "version": user.version,
                        "created_at": user.created_at,
                        "updated_at": user.updated_at,
                    },
                )
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise EmailTakenError(user.email) from exc
            raise

    async def _publish(self, events: Sequence[UserEvent]) -> None:
        await outbox.append(self._conn, [new_event(e) for e in events])


def _user(row: Row[Any]) -> User:
    return User(row.user_id, row.name, row.email, row.version, row.created_at, row.updated_at)
