"""Each service's own PostgreSQL database and login role, as ``polysaga up`` provisions them.

The role owns its database (and so its ``public`` schema and every table it creates) and
nothing else; CONNECT to the database is revoked from PUBLIC, so another service's role is
turned away at the door, and could not read a table if it got in. Passwords go to the server
as SCRAM-SHA-256 verifiers, so not even the server's statement log can hold one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import asyncpg

SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The verifier PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, RFC 7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision_owned_database(admin_dsn: str, name: str, password: str) -> None:
    """Role ``name`` (LOGIN, this password) owning database ``name``, which only it (and
    superusers) may connect to. Idempotent: a second run sets the new password."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        role = _ident(name)
        # A literal, because utility statements take no parameters; a verifier, not the password.
        secret = _literal(scram_verifier(password))
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD {secret}")
        else:
            await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {secret}")
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"ALTER DATABASE {role} OWNER TO {role}")
        else:
            await conn.execute(f"CREATE DATABASE {role} OWNER {role}")
        await conn.execute(f"REVOKE ALL ON DATABASE {role} FROM PUBLIC")
    finally:
        await conn.close()


async def close_maintenance_databases(admin_dsn: str) -> None:
    """No service role may connect to the server's own databases either (only superusers)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in ("postgres", "template1"):
            await conn.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {_ident(name)} FROM PUBLIC")
    finally:
        await conn.close()
