"""A request that finds the service's database down gets a 503 with Retry-After (a restart
is not the client's mistake nor a bug); any other unexpected error stays a 500."""

from __future__ import annotations

import asyncpg
from litestar import Litestar, get
from litestar.testing import TestClient

from polysaga.problems import EXCEPTION_HANDLERS, PROBLEM_JSON
from polysaga_tools.servers import free_port


@get("/needs-the-database")
async def needs_the_database() -> str:
    # A real connection attempt to a port nobody listens on: what a restarting server gives.
    await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", timeout=2)
    return "unreachable"


@get("/has-a-bug")
async def has_a_bug() -> str:
    raise ValueError("a bug")


def client() -> TestClient[Litestar]:
    app = Litestar(
        route_handlers=[needs_the_database, has_a_bug],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    return TestClient(app)


def test_an_unreachable_database_is_a_503_with_retry_after() -> None:
    with client() as http:
        response = http.get("/needs-the-database")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"].endswith("/store-unavailable")


def test_any_other_error_is_a_500_that_leaks_nothing() -> None:
    with client() as http:
        response = http.get("/has-a-bug")
    assert response.status_code == 500
    assert "a bug" not in response.text
