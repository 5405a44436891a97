"""Bad input gets a clear 4xx (RFC 9457 problem details), never a 500, and changes nothing.

Each case checks the exact status, the problem+json shape, and that the state the request
aimed at (orders, stock, prices, balances) is exactly what it was before."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import Stack
from stack_client import StackClient

PROBLEM_JSON = "application/problem+json"
JSON_CT = {"content-type": "application/json"}
PRICE, STOCK, BALANCE = "2.50", 10, "100.00"
# Known bug: Litestar converts request bodies with msgspec strict=False, so "1" becomes 1.
# (sku, user) -> the keyword arguments of one httpx request
RequestArgs = Callable[[str, str], dict[str, Any]]


@pytest.fixture
def c(stack: Stack, http: httpx.AsyncClient) -> StackClient:
    return StackClient(http, stack.state["services"])


@pytest.fixture
async def seeded(c: StackClient, unique: str) -> tuple[str, str]:
    """A SKU with a price and stock and a user with money: what bad requests must not touch."""
    sku, user = f"{unique}-tea", f"{unique}-ann"
    await c.seed(prices={sku: PRICE}, stock={sku: STOCK}, balances={user: BALANCE})
    return sku, user


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status, body
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    if slug is not None:
        assert body["type"].endswith(f"/{slug}"), body


def item(sku: str, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, **extra}


def order(user: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "items": items, **extra}


async def user_orders(c: StackClient, user: str) -> list[str]:
    """Every order id of this user, paging through GET /orders."""
    found: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"after": after} if after else {})}
        page = (await c.http.get(f"{c.order_url}/orders", params=params)).raise_for_status()
        body = page.json()
        found += [o["order_id"] for o in body["orders"] if o["user_id"] == user]
        after = body["next_after"]
        if after is None:
            return found


async def order_state(c: StackClient, sku: str, user: str) -> tuple[int, list[str], Any]:
    """All orders counted, this user's orders, and the SKU's stock."""
    stats = (await c.http.get(f"{c.order_url}/stats")).raise_for_status().json()
    return sum(stats.values()), await user_orders(c, user), await c.stock(sku)


async def price(c: StackClient, sku: str) -> str:
    response = await c.http.get(f"{c.order_url}/prices/{sku}")
    return str(response.raise_for_status().json()["price"])


# --- POST /orders ----------------------------------------------------------------------


def _padded(sku: str, user: str) -> dict[str, Any]:
    # A valid order padded with whitespace past 64 KiB: only the size limit can refuse it.
    text = json.dumps(order(user, [item(sku)])) + " " * (64 * 1024 + 1)
    return {"content": text.encode(), "headers": JSON_CT}


ORDER_CASES = [
    pytest.param(lambda s, u: {"content": b"{bad", "headers": JSON_CT}, 400, None, id="malformed"),
    pytest.param(lambda s, u: {"json": [order(u, [item(s)])]}, 400, None, id="json-array"),
    pytest.param(lambda s, u: {"content": b"", "headers": JSON_CT}, 400, None, id="empty-body"),
    pytest.param(lambda s, u: {"json": order(u, [item(s)], x=1)}, 400, None, id="unknown-field"),
    pytest.param(lambda s, u: {"json": order(u, [item(s, x=1)])}, 400, None, id="unknown-in-item"),
    pytest.param(lambda s, u: {"json": order(u, [item(s, 0)])}, 400, None, id="quantity-0"),
    pytest.param(lambda s, u: {"json": order(u, [item(s, -1)])}, 400, None, id="quantity-negative"),
    pytest.param(
        lambda s, u: {"json": order(u, [item(s, "1")])},
        400,
        None,
        id="quantity-string",
    ),
    pytest.param(lambda s, u: {"json": order(u, [item(s, 1.0)])}, 400, None, id="quantity-1.0"),
    pytest.param(lambda s, u: {"json": order(u, [item(s, 1.5)])}, 400, None, id="quantity-1.5"),
    pytest.param(lambda s, u: {"json": order(u, [item(s, 10_001)])}, 400, None, id="quantity-huge"),
    pytest.param(lambda s, u: {"json": order(u, [])}, 400, None, id="no-items"),
    pytest.param(lambda s, u: {"json": order(u, [item(s)] * 101)}, 400, None, id="101-items"),
    pytest.param(lambda s, u: {"json": {"items": [item(s)]}}, 400, None, id="missing-user"),
    pytest.param(lambda s, u: {"json": order("u" * 65, [item(s)])}, 400, None, id="user-too-long"),
    pytest.param(lambda s, u: {"json": order("a b", [item(s)])}, 400, None, id="user-with-space"),
    pytest.param(lambda s, u: {"json": order(u, [item("a b")])}, 400, None, id="sku-with-space"),
    pytest.param(lambda s, u: {"json": order(u, [item("../x")])}, 400, None, id="sku-path"),
    pytest.param(
        lambda s, u: {"json": order(u, [item(s), item(f"{s}-nope")])},
        422,
        "unknown-product",
        id="unknown-sku",
    ),
    pytest.param(_padded, 413, None, id="body-over-64KiB"),
    pytest.param(
        lambda s, u: {"json": order(u, [item(s)]), "headers": {"Idempotency-Key": "k" * 201}},
        400,
        None,
        id="idempotency-key-too-long",
    ),
]


@pytest.mark.parametrize(("request_args", "status", "slug"), ORDER_CASES)
async def test_bad_order_is_refused_and_changes_nothing(
    c: StackClient,
    seeded: tuple[str, str],
    request_args: RequestArgs,
    status: int,
    slug: str | None,
) -> None:
    sku, user = seeded
    before = await order_state(c, sku, user)
    response = await c.http.post(f"{c.order_url}/orders", **request_args(sku, user))
    assert_problem(response, status, slug)
    assert await order_state(c, sku, user) == before


async def test_order_sent_as_text_plain_is_refused_with_415(
    c: StackClient, seeded: tuple[str, str]
) -> None:
    """A body that is not declared as JSON is refused with 415, valid-looking or not."""
    sku, user = seeded
    text_plain = {"content-type": "text/plain"}
    before = await order_state(c, sku, user)
    malformed = await c.http.post(f"{c.order_url}/orders", content=b"{bad", headers=text_plain)
    valid = await c.http.post(
        f"{c.order_url}/orders", content=json.dumps(order(user, [item(sku, 3)])), headers=text_plain
    )
    assert_problem(valid, 415)
    assert_problem(malformed, 415)
    assert await order_state(c, sku, user) == before


# --- PUT /prices, /stock, /accounts ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"price": 1.5}, id="number"),
        pytest.param({"price": "abc"}, id="abc"),
        pytest.param({"price": "-1.00"}, id="negative"),
        pytest.param({"price": "1.234"}, id="three-places"),
        pytest.param({"price": "NaN"}, id="nan"),
        pytest.param({"price": "1e5"}, id="exponent"),
        pytest.param({"price": "1.00", "x": 1}, id="unknown-field"),
    ],
)
async def test_bad_price_is_refused_and_changes_nothing(
    c: StackClient, seeded: tuple[str, str], body: dict[str, Any]
) -> None:
    sku, _ = seeded
    response = await c.http.put(f"{c.order_url}/prices/{sku}", json=body)
    assert_problem(response, 400)
    assert await price(c, sku) == PRICE


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [
        pytest.param("{sku}%20x", 400, "bad-sku", id="space"),
        pytest.param("{sku}..%2Fx", 404, None, id="encoded-slash"),
        pytest.param("s" * 65, 400, "bad-sku", id="too-long"),
    ],
)
async def test_bad_sku_in_price_path_is_refused(
    c: StackClient, seeded: tuple[str, str], path: str, status: int, slug: str | None
) -> None:
    sku, _ = seeded
    url = f"{c.order_url}/prices/{path.format(sku=sku)}"
    assert_problem(await c.http.put(url, json={"price": "9.99"}), status, slug)
    assert_problem(await c.http.get(url), status, slug)  # nothing was stored under it
    assert await price(c, sku) == PRICE


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"available": -1}, id="negative"),
        pytest.param({"available": "5"}, id="string"),
        pytest.param({"available": 1.5}, id="fraction"),
        pytest.param({}, id="missing-field"),
        pytest.param({"available": 5, "x": 1}, id="unknown-field"),
    ],
)
async def test_bad_stock_is_refused_and_changes_nothing(
    c: StackClient, seeded: tuple[str, str], body: dict[str, Any]
) -> None:
    sku, _ = seeded
    response = await c.http.put(f"{c.inventory_url}/stock/{sku}", json=body)
    assert_problem(response, 400)
    assert await c.stock(sku) == {"sku": sku, "available": STOCK, "reserved": 0}


@pytest.mark.parametrize(
    "balance",
    [
        pytest.param(10, id="number"),
        pytest.param("-5.00", id="negative"),
        pytest.param("ten", id="words"),
        pytest.param("1.005", id="three-places"),
    ],
)
async def test_bad_balance_is_refused_and_changes_nothing(
    c: StackClient, seeded: tuple[str, str], balance: Any
) -> None:
    _, user = seeded
    response = await c.http.put(f"{c.payment_url}/accounts/{user}", json={"balance": balance})
    assert_problem(response, 400)
    assert await c.balance(user) == BALANCE


# --- queries, unknown resources, wrong methods -------------------------------------------

RANDOM_ID = str(uuid.uuid4())
QUERY_CASES = [
    # Litestar's {order_id:uuid} does not match, so no route: a plain 404, not a 400.
    pytest.param("order", "/orders/not-a-uuid", {}, 404, "not-found", id="order-not-uuid"),
    pytest.param("order", f"/orders/{RANDOM_ID}", {}, 404, "order-not-found", id="no-such-order"),
    pytest.param(
        "order", f"/orders/{RANDOM_ID}/events", {}, 404, "order-not-found", id="no-order-events"
    ),
    pytest.param(
        "order", f"/orders/{RANDOM_ID}", {"as_of": "not-a-time"}, 400, None, id="as-of-garbage"
    ),
    pytest.param(
        "order",
        f"/orders/{RANDOM_ID}",
        {"as_of": "2026-01-01T00:00:00"},
        400,
        "bad-as_of",
        id="as-of-no-offset",
    ),
    pytest.param("payment", "/payments", {"order_id": "nope"}, 400, None, id="payments-bad-id"),
    pytest.param("payment", "/payments", {}, 400, None, id="payments-no-id"),
    pytest.param("order", "/orders", {"limit": 0}, 400, None, id="limit-0"),
    pytest.param("order", "/orders", {"limit": 501}, 400, None, id="limit-501"),
    pytest.param("order", "/orders", {"status": "LOST"}, 400, None, id="bad-status-filter"),
    pytest.param("inventory", "/reservations/nope", {}, 404, "not-found", id="reservation-id"),
]


@pytest.mark.parametrize(("service", "path", "params", "status", "slug"), QUERY_CASES)
async def test_bad_query_is_a_problem(
    stack: Stack,
    http: httpx.AsyncClient,
    service: str,
    path: str,
    params: dict[str, Any],
    status: int,
    slug: str | None,
) -> None:
    response = await http.get(f"{stack.url(service)}{path}", params=params)
    assert_problem(response, status, slug)


async def test_unknown_sku_and_account_are_404_problems(c: StackClient, unique: str) -> None:
    assert_problem(await c.http.get(f"{c.inventory_url}/stock/{unique}-none"), 404, "unknown-sku")
    assert_problem(await c.http.get(f"{c.order_url}/prices/{unique}-none"), 404, "unknown-product")
    response = await c.http.get(f"{c.payment_url}/accounts/{unique}-none")
    assert_problem(response, 404, "unknown-account")


async def test_wrong_method_is_a_405_problem(c: StackClient, seeded: tuple[str, str]) -> None:
    sku, user = seeded
    before = await order_state(c, sku, user)
    assert_problem(await c.http.delete(f"{c.order_url}/orders"), 405, "method-not-allowed")
    response = await c.http.patch(f"{c.order_url}/prices/{sku}", json={"price": "9.99"})
    assert_problem(response, 405, "method-not-allowed")
    assert await order_state(c, sku, user) == before
    assert await price(c, sku) == PRICE


# --- a burst of bad requests -------------------------------------------------------------


async def test_a_burst_of_bad_requests_leaves_the_stack_healthy(
    stack: Stack, c: StackClient, seeded: tuple[str, str]
) -> None:
    sku, user = seeded
    before = await order_state(c, sku, user)
    orders, stock = f"{c.order_url}/orders", f"{c.inventory_url}/stock/{sku}"
    bad: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", orders, {"content": b"{bad", "headers": JSON_CT}, 400),
        ("POST", orders, {"json": order(user, [item(sku, 0)])}, 400),
        ("POST", orders, {"json": order(user, [item(f"{sku}-nope")])}, 422),
        ("POST", orders, _padded(sku, user), 413),
        ("PUT", f"{c.order_url}/prices/{sku}", {"json": {"price": "NaN"}}, 400),
        ("PUT", stock, {"json": {"available": -1}}, 400),
        ("PUT", f"{c.payment_url}/accounts/{user}", {"json": {"balance": "-5.00"}}, 400),
        ("GET", f"{orders}/{uuid.uuid4()}", {"params": {"as_of": "never"}}, 400),
        ("GET", f"{c.payment_url}/payments", {"params": {"order_id": "nope"}}, 400),
        ("DELETE", orders, {}, 405),
    ]
    burst = [bad[i % len(bad)] for i in range(30)]
    responses = await asyncio.gather(
        *(c.http.request(method, url, **kwargs) for method, url, kwargs, _ in burst)
    )
    for (_, _, _, status), response in zip(burst, responses, strict=True):
        assert_problem(response, status)

    assert await order_state(c, sku, user) == before
    assert await price(c, sku) == PRICE
    assert await c.balance(user) == BALANCE
    for service, url in stack.state["services"].items():
        assert (await c.http.get(f"{url}/readyz")).status_code == 200, service
    done = await c.wait_ended(await c.place(user, {sku: 2}))
    assert (done["status"], done["total"]) == ("CONFIRMED", "5.00")


async def test_an_order_whose_total_no_account_can_hold_is_refused(
    c: StackClient, seeded: tuple[str, str], unique: str
) -> None:
    _, user = seeded
    dear = f"{unique}-dear"
    await c.seed(prices={dear: "999999999999.99"}, stock={dear: 10}, balances={})
    before = await order_state(c, dear, user)
    response = await c.http.post(f"{c.order_url}/orders", json=order(user, [item(dear, 2)]))
    assert_problem(response, 422)
    assert response.json()["type"].endswith("order-too-large")
    assert await order_state(c, dear, user) == before
