"""A service's role and database on a shared PostgreSQL server: created owned by that role,
with CONNECT revoked from PUBLIC so no other role can connect; idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg


class SharedServerError(Exception):
    """The shared server could not be used; ``permanent`` when retrying will not help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class AdminConnection:
    """The shared server, as the administrator's URI in the admin Secret names it."""

    uri: str
    host: str
    port: int


def parse_admin_uri(uri: str) -> AdminConnection:
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SharedServerError(
            "the admin Secret's URI must look like postgresql://user:password@host:port/db",
            permanent=True,
        )
    try:
        port = parts.port or 5432
    except ValueError as error:
        raise SharedServerError(
            f"the admin Secret's URI has a bad port: {error}", permanent=True
        ) from error
    return AdminConnection(uri=uri.strip(), host=unquote(parts.hostname), port=port)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _connect(admin: AdminConnection) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(admin.uri, timeout=10)
    except (
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
    ) as error:
        # The Secret may be corrected; the resync retries, but it is worth a clear message.
        raise SharedServerError(
            f"the shared server refused the admin: {error}", permanent=False
        ) from error
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise SharedServerError(
            f"the shared server is unreachable: {error}", permanent=False
        ) from error


async def ensure_database(admin: AdminConnection, name: str, password: str) -> None:
    """Role ``name`` with ``password`` (set again each time, so it matches the Secret) and
    database ``name`` owned by it, which only its owner (and superusers) may connect to."""
    conn = await _connect(admin)
    try:
        role, database = _identifier(name), _identifier(name)
        has_role = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        verb = "ALTER" if has_role else "CREATE"
        # Utility statements take no bind parameters; the password is quoted as a literal.
        await conn.execute(f"{verb} ROLE {role} LOGIN PASSWORD {_literal(password)}")
        has_database = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not has_database:
            await conn.execute(f"CREATE DATABASE {database} OWNER {role}")
        await conn.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
    except asyncpg.PostgresError as error:
        raise SharedServerError(f"provisioning {name} failed: {error}", permanent=False) from error
    finally:
        await conn.close()


async def drop_database(admin: AdminConnection, name: str) -> None:
    """Removes the database (ending its sessions) and its role; nothing if already gone."""
    conn = await _connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")
        await conn.execute(f"DROP ROLE IF EXISTS {_identifier(name)}")
    except asyncpg.PostgresError as error:
        raise SharedServerError(f"dropping {name} failed: {error}", permanent=False) from error
    finally:
        await conn.close()
