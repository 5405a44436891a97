"""Least privilege on the running stack: each service's database credentials open its own
database and nothing else, FerretDB lets no one in on another's credentials, the state file
is private, and no credential reaches a log or a problem body, even when the database fails.
"""

from __future__ import annotations

import asyncio
import itertools
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import httpx
import pymongo
import pytest
from pymongo.errors import OperationFailure, PyMongoError

from conftest import Stack
from polysaga.events import declaration
from waiting import eventually

POSTGRES_SERVICES = (
    "order",
    "inventory",
    "payment",
    "user",
    "notification",
    "orchestrator",
    "sales",
)
MONGO_SERVICES = ("catalog", "order-view")
# A read of each service that needs its database.
PROBES = {
    "order": "/orders?limit=1",
    "inventory": "/stock/none",
    "payment": "/accounts/none",
    "user": "/users/00000000-0000-0000-0000-000000000000",
    "notification": "/notifications",
    "orchestrator": "/sagas/00000000-0000-0000-0000-000000000000",
    "sales": "/sales/customers/none",
    "catalog": "/products/none",
    "order-view": "/users/none/orders",
}


def libpq(url: str, database: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    if database is not None:
        parts = parts._replace(path=f"/{database}")
    return urlunsplit(parts)


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def admin_dsn(stack: Stack, database: str = "postgres") -> str:
    pg = stack.state["postgres"]
    password = (Path(stack.state["data_dir"]) / "postgres-superuser-password").read_text().strip()
    return f"postgresql://postgres:{password}@127.0.0.1:{pg['port']}/{database}"


def secrets_of(stack: Stack) -> set[str]:
    state = stack.state
    found = {u["password"] for u in state["nats_users"].values()}
    found.add(state["nats_admin"]["password"])
    for url in [*state["postgres"]["databases"].values(), *state["mongo"].values()]:
        password = urlsplit(url).password
        assert password, url
        found.add(unquote(password))
    found.add((Path(state["data_dir"]) / "postgres-superuser-password").read_text().strip())
    found.add(state["auth"]["operator_token"])
    found.add(state["auth"]["signing_key"].splitlines()[1])  # the private key's first line
    assert all(len(s) >= 20 for s in found)
    return found


def test_state_file_is_private_and_names_every_nats_user(stack: Stack) -> None:
    assert stat.S_IMODE(stack.state_file.stat().st_mode) == 0o600
    users = stack.state["nats_users"]
    assert set(users) == declaration.services()
    assert all(u["user"] == name and u["password"] for name, u in users.items())
    assert len({u["password"] for u in users.values()}) == len(users)


async def test_each_role_connects_only_to_its_own_database(stack: Stack) -> None:
    urls = stack.state["postgres"]["databases"]
    assert set(urls) == set(POSTGRES_SERVICES)
    for url in urls.values():
        conn = await asyncpg.connect(libpq(url))
        try:
            role = await conn.fetchrow(
                "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls"
                " FROM pg_roles WHERE rolname = current_user"
            )
            assert role["rolname"] == database_of(url)
            assert not any(role[k] for k in ("rolsuper", "rolcreatedb", "rolcreaterole"))
            assert not role["rolbypassrls"]
        finally:
            await conn.close()
    own_and_foreign = [
        *(database_of(u) for u in urls.values()),
        "polysaga_catalog",
        "polysaga_order_view",
        "postgres",
        "template1",
    ]
    for url in urls.values():
        for database in own_and_foreign:
            if database == database_of(url):
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await asyncpg.connect(libpq(url, database))


async def test_a_role_let_into_another_database_still_reads_no_table(stack: Stack) -> None:
    """Defence in depth: even with CONNECT granted by mistake, every table is the owner's."""
    urls = stack.state["postgres"]["databases"]
    for intruder, victim in itertools.permutations(("order", "inventory", "payment"), 2):
        victim_db, intruder_role = database_of(urls[victim]), database_of(urls[intruder])
        admin = await asyncpg.connect(admin_dsn(stack, victim_db))
        try:
            tables = [
                r["tablename"]
                for r in await admin.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            assert tables, victim
            await admin.execute(f'GRANT CONNECT ON DATABASE "{victim_db}" TO "{intruder_role}"')
            conn = await asyncpg.connect(libpq(urls[intruder], victim_db))
            try:
                for table in tables:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.fetch(f'SELECT * FROM "{table}" LIMIT 1')
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(f'DELETE FROM "{table}"')
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("CREATE TABLE planted (x int)")
            finally:
                await conn.close()
        finally:
            await admin.execute(f'REVOKE CONNECT ON DATABASE "{victim_db}" FROM "{intruder_role}"')
            await admin.close()


def _with_host(url: str, netloc_host: str) -> str:
    parts = urlsplit(url)
    login = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{login}@{netloc_host}"))


def _count(url: str, database: str) -> int:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000
    )
    try:
        return len(client[database].list_collection_names())
    finally:
        client.close()


def test_ferretdb_admits_only_the_owning_service(stack: Stack) -> None:
    mongo, ferrets = stack.state["mongo"], stack.state["ferretdb"]
    assert set(mongo) == set(MONGO_SERVICES) == set(ferrets)
    for owner in MONGO_SERVICES:
        database = database_of(mongo[owner])
        assert _count(mongo[owner], database) > 0  # its own data, on its own credentials
        host = urlsplit(ferrets[owner]).netloc
        anonymous = f"{ferrets[owner]}/{database}"
        with pytest.raises(PyMongoError):
            _count(anonymous, database)
        for other in MONGO_SERVICES:
            if other != owner:
                with pytest.raises(OperationFailure):
                    _count(_with_host(mongo[other], host), database)


async def test_no_credential_in_logs_or_problem_bodies_even_when_the_database_fails(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    # Lock every service out of its database (cut its connections, refuse new ones), ask each
    # for data and readiness, then let them back in.
    urls = [*stack.state["postgres"]["databases"].values(), *stack.state["mongo"].values()]
    roles = [database_of(u) for u in urls]
    bodies: list[str] = []
    seen = {n: len(_log(stack, n)) for s in PROBES for n in _logs_of(s)}  # only what is new
    admin = await asyncpg.connect(admin_dsn(stack))
    try:
        for role in roles:
            await admin.execute(f'ALTER ROLE "{role}" NOLOGIN')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)", roles
        )
        # pg_terminate_backend only signals: a backend still alive would serve the probe on
        # its old session, and the service would never meet the refused login.
        await eventually(
            lambda: _no_session_left(admin, roles), 30, what="every locked-out session gone"
        )
        for service, path in PROBES.items():

            async def refused(service: str = service, path: str = path) -> bool:
                # A pooled connection may first fail as terminated; ask until the service
                # (or its FerretDB) has tried a new one and met the refused login.
                for url in (stack.url(service) + path, stack.url(service) + "/readyz"):
                    bodies.append((await http.get(url)).text)
                return any(REFUSED_LOGIN in _log(stack, n)[seen[n] :] for n in _logs_of(service))

            await eventually(refused, 30, what=f"{service} refused its database login")
    finally:
        for role in roles:
            await admin.execute(f'ALTER ROLE "{role}" LOGIN')
        await admin.close()
    await _wait_ready(stack, http)
    logs = Path(stack.state["data_dir"]) / "logs"
    texts = {p.name: p.read_text(errors="replace") for p in logs.glob("*.log")}
    texts["up.log"] = (stack.state_file.parent / "up.log").read_text(errors="replace")
    texts["problem bodies"] = "\n".join(bodies)
    for secret in secrets_of(stack):
        leaked = [name for name, text in texts.items() if secret in text]
        assert not leaked, f"a credential appears in {leaked}"


REFUSED_LOGIN = "not permitted to log in"


def _logs_of(service: str) -> list[str]:
    """The log files where a service's refused login shows: its own, or its FerretDB's."""
    return [f"{service}.log", f"ferretdb-{service}.log"]


def _log(stack: Stack, name: str) -> str:
    path = Path(stack.state["data_dir"]) / "logs" / name
    return path.read_text(errors="replace") if path.exists() else ""


async def _no_session_left(admin: asyncpg.Connection, roles: list[str]) -> bool:
    left = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)", roles
    )
    return left == 0


async def _wait_ready(stack: Stack, http: httpx.AsyncClient, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    for service in stack.state["services"]:
        while (await http.get(stack.url(service) + "/readyz")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, f"{service} not ready again"
            await asyncio.sleep(0.2)
