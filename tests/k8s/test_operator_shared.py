"""Shared mode against the real PostgreSQL fixture: each service gets a role and a database
on one server; its role connects to its own database and is refused by another's."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import pytest

from k8s.apiserver import KubeApiServer
from k8s.polling import eventually
from k8s.resources import apply, get, service_database
from polysaga_tools.servers import PostgresServer

pytestmark = pytest.mark.usefixtures("running_operator")


def admin_uri(server: PostgresServer) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres"


def shared(name: str, service: str, **spec: Any) -> dict[str, Any]:
    return service_database(
        name,
        service,
        mode="shared",
        sharedServer={"adminSecretRef": {"name": "pg-admin"}},
        **spec,
    )


def create_admin_secret(api: KubeApiServer, namespace: str, server: PostgresServer) -> None:
    api.kubectl(
        "create",
        "secret",
        "generic",
        "pg-admin",
        "-n",
        namespace,
        f"--from-literal=uri={admin_uri(server)}",
    )


def ready_url(api: KubeApiServer, namespace: str, name: str) -> str:
    """The connection URI from the Secret, once the resource reports Ready."""

    def probe() -> str | None:
        body = get(api, "ServiceDatabase", namespace, name) or {}
        if (body.get("status") or {}).get("phase") != "Ready":
            return None
        secret = get(api, "Secret", namespace, f"{name}-credentials")
        return (
            base64.b64decode(secret["data"]["POLYSAGA_DATABASE_URL"]).decode() if secret else None
        )

    url = eventually(probe, timeout_s=90, what=f"{namespace}/{name} Ready with a Secret")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{database}"


async def test_each_role_reaches_its_own_database_and_no_other(
    kube_apiserver: KubeApiServer, namespace: str, postgres_server: PostgresServer
) -> None:
    create_admin_secret(kube_apiserver, namespace, postgres_server)
    apply(kube_apiserver, namespace, shared("alpha-db", "alpha"))
    apply(kube_apiserver, namespace, shared("beta-db", "beta"))
    alpha_url, beta_url = (ready_url(kube_apiserver, namespace, n) for n in ("alpha-db", "beta-db"))
    alpha_db, beta_db = (url.rsplit("/", 1)[1] for url in (alpha_url, beta_url))
    assert alpha_db == f"{namespace.replace('-', '_')}_alpha"

    for url, own in ((alpha_url, alpha_db), (beta_url, beta_db)):
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == own
            await conn.execute("CREATE TABLE mine (id int)")  # it owns the database
        finally:
            await conn.close()

    for url, other in ((alpha_url, beta_db), (beta_url, alpha_db)):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await asyncpg.connect(with_database(url, other))

    # PUBLIC has no CONNECT either: a role the operator never made is refused too.
    admin = await asyncpg.connect(admin_uri(postgres_server))
    try:
        await admin.execute(f'CREATE ROLE "{namespace}_stranger" LOGIN')
    finally:
        await admin.close()
    stranger = (
        alpha_url.split("://", 1)[0] + f"://{namespace}_stranger@" + alpha_url.split("@", 1)[1]
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(stranger)


async def role_and_database(server: PostgresServer, name: str) -> tuple[bool, bool]:
    admin = await asyncpg.connect(admin_uri(server))
    try:
        role = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        database = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await admin.close()
    return bool(role), bool(database)


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
async def test_deletion_policy_decides_whether_role_and_database_stay(
    kube_apiserver: KubeApiServer, namespace: str, postgres_server: PostgresServer, policy: str
) -> None:
    create_admin_secret(kube_apiserver, namespace, postgres_server)
    apply(kube_apiserver, namespace, shared("gone-db", "gone", deletionPolicy=policy))
    url = ready_url(kube_apiserver, namespace, "gone-db")
    name = url.rsplit("/", 1)[1]
    assert await role_and_database(postgres_server, name) == (True, True)
    kube_apiserver.kubectl("delete", "sdb", "gone-db", "-n", namespace, "--wait=false")
    eventually(
        lambda: get(kube_apiserver, "ServiceDatabase", namespace, "gone-db") is None,
        what="the ServiceDatabase gone after its finalizer ran",
    )
    secret = get(kube_apiserver, "Secret", namespace, "gone-db-credentials")
    if policy == "Retain":
        assert await role_and_database(postgres_server, name) == (True, True)
        assert secret is not None
    else:
        assert await role_and_database(postgres_server, name) == (False, False)
        assert secret is None


def test_a_missing_admin_secret_keeps_it_pending_with_the_reason(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, shared("wait-db", "waiting"))

    def condition() -> dict[str, Any] | None:
        body = get(kube_apiserver, "ServiceDatabase", namespace, "wait-db") or {}
        status = body.get("status") or {}
        found = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        return {**found[0], "phase": status["phase"]} if found else None

    ready = eventually(condition, what="a Ready condition on wait-db")
    assert ready["phase"] == "Pending"
    assert ready["status"] == "False"
    assert "admin Secret" in ready["message"] and "pg-admin" in ready["message"]


def test_an_admin_secret_without_the_uri_key_fails_permanently(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    kube_apiserver.kubectl(
        "create", "secret", "generic", "pg-admin", "-n", namespace, "--from-literal=url=x"
    )
    apply(kube_apiserver, namespace, shared("broken-db", "broken"))

    def failed() -> dict[str, Any] | None:
        status = (get(kube_apiserver, "ServiceDatabase", namespace, "broken-db") or {}).get(
            "status"
        ) or {}
        return status if status.get("phase") == "Failed" else None

    status = eventually(failed, what="phase Failed on broken-db")
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == "InvalidConfiguration"
    assert "has no key 'uri'" in ready["message"]
