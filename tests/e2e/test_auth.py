"""Authentication on the running stack: internal writes and /admin routes refuse a request
without the operator token (401, nothing changed); the gateway refuses unsigned, expired and
foreign tokens, shows a customer only their own orders (another's is the 404 of an unknown
one, with nothing of it in the answer), shows an operator everything, and places a
customer's order as the token's user; ``polysaga token`` prints a token the gateway takes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from test_read_side import confirmed_order

from conftest import Stack
from polysaga_tools.local_identity import LocalIdentity
from stack_client import StackClient
from waiting import eventually

WRITES = [
    ("order", "PUT", "/prices/{sku}", {"price": "1.00"}),
    ("inventory", "PUT", "/stock/{sku}", {"available": 1000}),
    ("payment", "PUT", "/accounts/{sku}", {"balance": "1000000.00"}),
    ("catalog", "POST", "/products", {"sku": "{sku}", "name": "Free lunch", "price": "0.01"}),
    ("catalog", "PATCH", "/products/{sku}", {"price": "0.01"}),
    ("order-view", "POST", "/admin/rebuild", None),
    ("order-view", "GET", "/admin/digest", None),
]


def _fill(value: Any, sku: str) -> Any:
    if isinstance(value, str):
        return value.format(sku=sku)
    if isinstance(value, dict):
        return {k: _fill(v, sku) for k, v in value.items()}
    return value


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "operator-jwt"])
async def test_internal_writes_and_admin_routes_refuse_without_the_operator_token(
    stack: Stack,
    http: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    unique: str,
    authorization: str | None,
) -> None:
    sku = f"{unique}-guarded"
    await StackClient(http, stack.state["services"]).seed(
        prices={sku: "9.00"}, stock={sku: 3}, balances={sku: "5.00"}
    )
    digest_before = (await http.get(f"{stack.url('order-view')}/admin/digest")).json()
    # A gateway token (even an operator's) is not the operator token.
    headers = {
        None: {},
        "Bearer wrong-token": {"Authorization": "Bearer wrong-token"},
        "operator-jwt": stack.bearer("ops", "operator"),
    }[authorization]
    for service, method, path, body in WRITES:
        response = await anonymous.request(
            method,
            f"{stack.url(service)}{_fill(path, sku)}",
            json=_fill(body, sku),
            headers=headers,
        )
        assert response.status_code == 401, (service, method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith('Bearer realm="polysaga"')
        assert stack.state["auth"]["operator_token"] not in response.text
    client = StackClient(http, stack.state["services"])
    assert (await client.stock(sku))["available"] == 3
    assert await client.balance(sku) == "5.00"
    price = (await http.get(f"{stack.url('order')}/prices/{sku}")).json()["price"]
    assert price == "9.00"
    assert (await http.get(f"{stack.url('catalog')}/products/{sku}")).status_code == 404
    digest_after = (await http.get(f"{stack.url('order-view')}/admin/digest")).json()
    assert digest_after["generation"] == digest_before["generation"]  # no rebuild ran


async def test_reads_stay_open_inside_the_stack(stack: Stack, anonymous: httpx.AsyncClient) -> None:
    # Internal reads are for the gateway and the operator's tools: the network policies of
    # the charts keep everyone else out (tests/charts), not a token.
    response = await anonymous.get(f"{stack.url('order')}/stats")
    assert response.status_code == 200


def _forged(stack: Stack, kind: str) -> str:
    auth = stack.state["auth"]
    now = int(time.time())
    claims = {"iss": auth["issuer"], "aud": auth["audience"], "sub": "x", "exp": now + 60}
    identity = LocalIdentity.from_state(auth)
    if kind == "expired":
        return identity.sign({**claims, "exp": now - 120})
    if kind == "unsigned":
        return jwt.encode(claims, None, algorithm="none")
    if kind == "foreign-issuer":
        return identity.sign({**claims, "iss": "https://idp.example.com"})
    return LocalIdentity.new().sign(claims, kid=identity.key_id)  # a stranger's key


@pytest.mark.parametrize("kind", ["expired", "unsigned", "foreign-issuer", "stranger-key"])
async def test_the_gateway_refuses_bad_tokens_and_leaks_nothing(
    stack: Stack, http: httpx.AsyncClient, anonymous: httpx.AsyncClient, unique: str, kind: str
) -> None:
    placed = await confirmed_order(stack, http, unique)
    order_id = placed["order"]["order_id"]
    gateway = stack.url("gateway")
    token = _forged(stack, kind)
    for path in (f"/orders/{order_id}/details", f"/orders/{order_id}/summary"):
        response = await anonymous.get(
            f"{gateway}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert placed["user_id"] not in response.text and placed["sku"] not in response.text
    response = await anonymous.get(f"{gateway}/orders/{order_id}/details")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="polysaga"'


async def test_a_customer_sees_only_their_own_orders_and_an_operator_all(
    stack: Stack, http: httpx.AsyncClient, anonymous: httpx.AsyncClient, unique: str
) -> None:
    placed = await confirmed_order(stack, http, unique)
    order_id, owner = placed["order"]["order_id"], placed["user_id"]
    gateway = stack.url("gateway")

    async def get(path: str, user: str, *roles: str) -> httpx.Response:
        return await anonymous.get(f"{gateway}{path}", headers=stack.bearer(user, *roles))

    own = await get(f"/orders/{order_id}/details", owner)
    assert own.status_code == 200 and own.json()["order"]["user_id"] == owner
    foreign = await get(f"/orders/{order_id}/details", f"{unique}-mallory")
    unknown_id = str(uuid.uuid4())
    unknown = await get(f"/orders/{unknown_id}/details", f"{unique}-mallory")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"].replace(order_id, "?") == unknown.json()["detail"].replace(
        unknown_id, "?"
    )
    for response in (foreign, await get(f"/orders/{order_id}/summary", f"{unique}-mallory")):
        assert response.status_code == 404
        assert owner not in response.text and placed["sku"] not in response.text
        assert "Grace" not in response.text
    assert (await get(f"/users/{owner}/orders", f"{unique}-mallory")).status_code == 403
    listing = await get(f"/users/{owner}/orders", owner)
    assert [o["order_id"] for o in listing.json()["orders"]] == [order_id]
    operator = await get(f"/orders/{order_id}/details", "ops", "operator")
    assert operator.status_code == 200 and operator.json()["user"]["name"] == "Grace Hopper"
    assert (await get(f"/users/{owner}/orders", "ops", "operator")).status_code == 200


async def test_a_customer_places_an_order_through_the_gateway_as_themselves(
    stack: Stack, http: httpx.AsyncClient, anonymous: httpx.AsyncClient, unique: str
) -> None:
    customer, sku = f"{unique}-carol", f"{unique}-mug"
    client = StackClient(http, stack.state["services"])
    await client.seed(prices={sku: "4.00"}, stock={sku: 10}, balances={customer: "40.00"})
    token = stack.cli("token", "--user", customer)
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {token.stdout.strip()}", "Idempotency-Key": unique}
    body = {"items": [{"sku": sku, "quantity": 3}]}
    placed = await anonymous.post(f"{stack.url('gateway')}/orders", json=body, headers=headers)
    again = await anonymous.post(f"{stack.url('gateway')}/orders", json=body, headers=headers)
    assert placed.status_code == 202, placed.text
    assert again.json()["order_id"] == placed.json()["order_id"]  # the key made it one order
    order = await client.wait_ended(placed.json()["order_id"])
    assert (order["user_id"], order["status"]) == (customer, "CONFIRMED")
    assert await client.balance(customer) == "28.00"

    async def in_the_view() -> bool:
        response = await anonymous.get(
            f"{stack.url('gateway')}/orders/{order['order_id']}/summary",
            headers={"Authorization": headers["Authorization"]},
        )
        return response.status_code == 200 and response.json()["status"] == "CONFIRMED"

    await eventually(in_the_view)


def test_the_token_command_refuses_what_is_not_a_user_or_a_role(stack: Stack) -> None:
    for args in (["--user", "a b"], ["--user", "ok", "--role", "bad role"]):
        result = stack.cli("token", *args)
        assert result.returncode != 0 and "error" in result.stderr
