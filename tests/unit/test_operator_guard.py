"""The operator token guard on a real app (no servers: a service with no store): internal
writes and every /admin route — also one whose author added no guard — refuse a request
without the token with a 401 problem and an RFC 6750 challenge, and run nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import get, post
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from polysaga.app import create_app
from polysaga.auth import require_operator
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

TOKEN = "s3cret-operator-token"
calls: list[str] = []


@post("/things", guards=[require_operator], sync_to_thread=False)
def write_thing() -> dict[str, str]:
    calls.append("write")
    return {"written": "yes"}


@post("/admin/forgotten", sync_to_thread=False)  # no guard of its own
def admin_forgotten() -> dict[str, str]:
    calls.append("admin")
    return {"admin": "yes"}


@get("/administrators", sync_to_thread=False)  # not under /admin
def administrators() -> list[str]:
    return ["ada"]


@get("/things", sync_to_thread=False)
def read_things() -> list[str]:
    return []


def _app(token: str | None) -> Any:
    settings = ServiceSettings(
        service_name="probe", operator_token=SecretStr(token) if token else None
    )
    definition = ServiceDefinition(
        name="probe",
        store="none",
        uses_nats=False,
        route_handlers=[write_thing, admin_forgotten, administrators, read_things],
    )
    return create_app(definition, settings)


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Any]]:
    calls.clear()
    async with AsyncTestClient(_app(TOKEN)) as client:
        yield client


@pytest.mark.parametrize("path", ["/things", "/admin/forgotten"])
async def test_without_a_token_a_protected_route_is_a_401_problem_and_runs_nothing(
    client: AsyncTestClient[Any], path: str
) -> None:
    response = await client.post(path)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == 'Bearer realm="polysaga"'
    body = response.json()
    assert body["type"] == "https://polysaga.io/problems/unauthorized"
    assert body["status"] == 401 and body["instance"] == path
    assert calls == []


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer other", f"bearer  {TOKEN}extra"],
)
async def test_a_wrong_token_is_a_401_with_invalid_token(
    client: AsyncTestClient[Any], authorization: str
) -> None:
    for path in ("/things", "/admin/forgotten"):
        response = await client.post(path, headers={"Authorization": authorization})
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="polysaga", error="invalid_token"')
        assert TOKEN not in response.text
    assert calls == []


@pytest.mark.parametrize("authorization", [f"Basic {TOKEN}", TOKEN, "Bearer", "Bearer a b"])
async def test_other_schemes_and_malformed_headers_are_refused(
    client: AsyncTestClient[Any], authorization: str
) -> None:
    response = await client.post("/things", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert calls == []


async def test_the_right_token_opens_both_and_the_scheme_is_case_insensitive(
    client: AsyncTestClient[Any],
) -> None:
    ok = await client.post("/things", headers={"Authorization": f"Bearer {TOKEN}"})
    admin = await client.post("/admin/forgotten", headers={"Authorization": f"bearer {TOKEN}"})
    assert (ok.status_code, admin.status_code) == (201, 201)
    assert calls == ["write", "admin"]


async def test_reads_and_routes_outside_admin_stay_open(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/things")).status_code == 200
    assert (await client.get("/administrators")).status_code == 200
    assert (await client.get("/healthz")).status_code == 200


async def test_a_service_without_an_operator_token_refuses_every_operator_request() -> None:
    calls.clear()
    async with AsyncTestClient(_app(None)) as client:
        for token in (TOKEN, "", "anything"):
            response = await client.post("/things", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
        assert (await client.post("/admin/forgotten")).status_code == 401
    assert calls == []


async def test_the_openapi_document_names_the_token_and_the_401(
    client: AsyncTestClient[Any],
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["operatorToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["operatorToken"]["description"],
    }
    for path in ("/things", "/admin/forgotten"):
        operation = schema["paths"][path]["post"]
        assert operation["security"] == [{"operatorToken": []}]
        assert "401" in operation["responses"]
    assert "security" not in schema["paths"]["/things"]["get"]
    assert "401" not in schema["paths"]["/things"]["get"]["responses"]
