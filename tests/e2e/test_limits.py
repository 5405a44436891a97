"""Limits of the read side and the entity services (the saga services' own are in
test_bad_input.py): strict bodies (unknown fields refused), a body size limit, JSON only,
pagination caps; each refusal is a problem and creates nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_bad_input import assert_problem

from conftest import Stack

OVER_64_KIB = 64 * 1024 + 1


def _padded(body: dict[str, Any]) -> str:
    """Valid JSON, only too large: whitespace past the body limit."""
    import json

    return json.dumps(body) + " " * OVER_64_KIB


def _user(unique: str) -> dict[str, Any]:
    return {"name": "Ann", "email": f"ann-{unique}@example.com"}


def _product(unique: str) -> dict[str, Any]:
    return {"sku": f"{unique}-sku", "name": "Tea", "price": "2.50"}


# (service, path, body builder, key that proves nothing was made)
CREATES = [
    pytest.param("user", "/users", _user, id="user"),
    pytest.param("catalog", "/products", _product, id="catalog"),
]


@pytest.mark.parametrize(("service", "path", "body"), CREATES)
async def test_refused_bodies_create_nothing(
    stack: Stack, http: httpx.AsyncClient, unique: str, service: str, path: str, body: Any
) -> None:
    url = f"{stack.url(service)}{path}"
    valid: dict[str, Any] = body(unique)
    refusals = [
        (http.post(url, json={**valid, "role": "admin"}), 400),  # unknown field
        (http.post(url, json={k: v for k, v in valid.items() if k != "name"}), 400),  # missing
        (http.post(url, json={**valid, "name": 7}), 400),  # no lenient coercion
        (http.post(url, json={**valid, "name": "x" * 10_000}), 400),  # over the field's bound
        # A control character; NUL would not even fit in PostgreSQL (found by the fuzzer).
        (http.post(url, json={**valid, "name": "Ann\u0000"}), 400),
        (http.post(url, json={**valid, "name": "Ann\nsmith"}), 400),
        (
            http.post(url, content=_padded(valid), headers={"content-type": "application/json"}),
            413,
        ),
        (http.post(url, content=str(valid), headers={"content-type": "text/plain"}), 415),
        (http.post(url, content="{", headers={"content-type": "application/json"}), 400),
    ]
    for request, status in refusals:
        assert_problem(await request, status)
    # Had any of them created the user or product, this would be a 409.
    created = await http.post(url, json=valid)
    assert created.status_code == 201, created.text


PAGES = [
    pytest.param("order-view", {"limit": 101}, id="view-limit-over-cap"),
    pytest.param("order-view", {"limit": 0}, id="view-limit-0"),
    pytest.param("order-view", {"offset": 100_001}, id="view-offset-over-cap"),
    pytest.param("order-view", {"offset": -1}, id="view-offset-negative"),
    pytest.param("gateway", {"limit": 101}, id="gateway-limit-over-cap"),
    pytest.param("gateway", {"offset": 100_001}, id="gateway-offset-over-cap"),
]


@pytest.mark.parametrize(("service", "params"), PAGES)
async def test_pagination_is_capped(
    stack: Stack, http: httpx.AsyncClient, service: str, params: dict[str, Any]
) -> None:
    response = await http.get(f"{stack.url(service)}/users/u-1/orders", params=params)
    assert_problem(response, 400)


async def test_ids_are_checked_before_any_store_is_asked(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    assert_problem(
        await http.get(f"{stack.url('notification')}/notifications", params={"order_id": "x"}),
        400,
    )
    assert_problem(await http.get(f"{stack.url('order-view')}/users/{'u' * 300}/orders"), 400)
    assert_problem(await http.get(f"{stack.url('gateway')}/orders/not-a-uuid/details"), 400)
