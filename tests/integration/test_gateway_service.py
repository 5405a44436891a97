"""The gateway in-process against real HTTP peers on free ports: small Litestar apps served
by uvicorn that stand in for order, user, catalog and order-view with canned answers (the
end-to-end tests use the real services), one that answers too late, and a closed port.

Checked: the composed document; a degraded one (a part slow, refused or 5xx) arriving
within about two timeouts; 503 with Retry-After when the order service is down; 404 for an
unknown order; the read model's answers forwarded with status, body and Retry-After. And
the edge's authentication: every route needs a bearer JWT signed by the issuer's key; a
customer sees only their own orders (another's is the same 404 as an unknown one, and
nothing else is asked for it), an operator sees all; a customer's order is placed as the
token's subject."""

from __future__ import annotations

import asyncio
import atexit
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.testing import AsyncTestClient

from gateway.bootstrap import build
from http_peers import closed_port_url, serving
from polysaga.app import create_app
from polysaga.settings import ServiceSettings
from polysaga_tools.local_identity import LocalIdentity

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5
ORDER_ID = str(uuid.uuid4())
ORDER_WITH_BROKEN_SKU = str(uuid.uuid4())
UNKNOWN_ORDER = str(uuid.uuid4())
USER = {"user_id": "user-1", "name": "Alice", "email": "alice@example.org", "version": 1}
PRODUCTS = {
    "SKU-1": {"sku": "SKU-1", "name": "Widget", "price": "2.50"},
    "SKU-2": {"sku": "SKU-2", "name": "Gadget", "price": "5.00"},
}


def canned_order(order_id: str, skus: list[str]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "user_id": "user-1",
        "status": "CONFIRMED",
        "items": [{"sku": sku, "quantity": 1, "unit_price": "1.00"} for sku in skus],
        "total": f"{len(skus)}.00",
        "version": 3,
    }


ORDERS = {
    ORDER_ID: canned_order(ORDER_ID, ["SKU-1", "SKU-2"]),
    ORDER_WITH_BROKEN_SKU: canned_order(ORDER_WITH_BROKEN_SKU, ["SKU-1", "SKU-BROKEN"]),
}
# The issuer of the tokens, as an identity provider would publish it: its JWKS in a file.
IDENTITY = LocalIdentity.new()
JWKS_DIR = Path(tempfile.mkdtemp(prefix="polysaga-gateway-jwks-"))
atexit.register(shutil.rmtree, JWKS_DIR, True)
JWKS_FILE = JWKS_DIR / "jwks.json"
JWKS_FILE.write_text(json.dumps(IDENTITY.jwks()))
# What the healthy peer was asked (method, path), and the orders it was given.
ASKED: list[tuple[str, str]] = []
PLACED: list[dict[str, Any]] = []


def bearer(user_id: str, *roles: str, **claims: Any) -> dict[str, str]:
    if claims:
        now = int(time.time())
        base = {"iss": IDENTITY.issuer, "aud": IDENTITY.audience, "sub": user_id, "exp": now + 60}
        token = IDENTITY.sign({**base, **claims})
    else:
        token = IDENTITY.token(user_id, roles, ttl_s=60)
    return {"Authorization": f"Bearer {token}"}


def problem(status: int, title: str, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        {"type": "about:blank", "title": title, "status": status},
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )


# --- test peers: canned stand-ins for the services the gateway calls ---------------------


def remember(request: Request[Any, Any, Any]) -> None:
    ASKED.append((request.method, request.url.path))


@post("/orders", sync_to_thread=False, status_code=202)
def peer_place(data: JSONBody[dict[str, Any]], request: Request[Any, Any, Any]) -> Response[Any]:
    PLACED.append({"body": data, "idempotency_key": request.headers.get("idempotency-key")})
    if any(item["sku"] == "SKU-UNKNOWN" for item in data["items"]):
        return problem(422, "Unknown product")
    return Response({"order_id": str(uuid.uuid4()), "version": 1}, status_code=202)


@get("/orders/{order_id:str}", sync_to_thread=False)
def peer_order(order_id: FromPath[str]) -> Response[Any]:
    order = ORDERS.get(order_id)
    return Response(order) if order else problem(404, "Order not found")


@get("/users/{user_id:str}", sync_to_thread=False)
def peer_user(user_id: FromPath[str]) -> Response[Any]:
    return Response(USER) if user_id == USER["user_id"] else problem(404, "User not found")


@get("/products/{sku:str}", sync_to_thread=False)
def peer_product(sku: FromPath[str]) -> Response[Any]:
    if sku == "SKU-BROKEN":
        return problem(500, "Internal Server Error")
    product = PRODUCTS.get(sku)
    return Response(product) if product else problem(404, "Unknown product")


@get("/orders/{order_id:str}/summary", sync_to_thread=False)
def peer_summary(
    order_id: FromPath[str], min_version: FromQuery[int | None] = None
) -> Response[Any]:
    if order_id not in ORDERS:
        return problem(404, "Order not found")
    if min_version is not None and min_version > 3:
        return problem(503, "Not caught up yet", {"Retry-After": "2"})
    return Response(
        {"order_id": order_id, "user_id": "user-1", "status": "CONFIRMED", "version": 3}
    )


@get("/users/{user_id:str}/orders", sync_to_thread=False)
def peer_user_orders(
    user_id: FromPath[str], limit: FromQuery[int] = 50, offset: FromQuery[int] = 0
) -> dict[str, Any]:
    return {"user_id": user_id, "orders": [ORDER_ID], "limit": limit, "offset": offset}


@get("/{path:path}")
async def peer_too_slow(path: FromPath[str]) -> dict[str, str]:
    await asyncio.sleep(TIMEOUT_S * 6)
    return {"late": path}


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, str]]:
    healthy = Litestar(
        [peer_place, peer_order, peer_user, peer_product, peer_summary, peer_user_orders],
        before_request=remember,
        debug=False,
    )
    slow = Litestar([peer_too_slow])
    with serving(healthy) as healthy_url, serving(slow) as slow_url:
        yield {"healthy": healthy_url, "slow": slow_url, "closed": closed_port_url()}


@asynccontextmanager
async def gateway(
    peers: Mapping[str, str], *, as_user: Mapping[str, str] | None = None, **overrides: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    """A gateway whose dependencies are all the healthy peer, except ``overrides``
    (service name -> "slow" | "closed"); its client sends ``as_user``'s token (by default
    the customer who owns the canned orders)."""
    urls = {name: peers["healthy"] for name in ("order", "user", "catalog", "order-view")}
    urls |= {name.replace("_", "-"): peers[kind] for name, kind in overrides.items()}
    settings = ServiceSettings(
        service_name="gateway",
        service_urls=urls,
        dependency_timeout_s=TIMEOUT_S,
        jwks_file=JWKS_FILE,
        jwt_issuer=IDENTITY.issuer,
        jwt_audience=IDENTITY.audience,
    )
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
        client.headers.update(bearer("user-1") if as_user is None else as_user)
        ASKED.clear()
        yield client


async def test_details_are_composed_from_order_user_and_products(peers: dict[str, str]) -> None:
    async with gateway(peers) as client:
        response = await client.get(f"/orders/{ORDER_ID}/details")
    assert response.status_code == 200
    assert response.json() == {
        "order": ORDERS[ORDER_ID],
        "user": USER,
        "products": PRODUCTS,
        "missing": [],
        "complete": True,
    }


async def test_a_slow_user_service_is_a_gap_answered_within_two_timeouts(
    peers: dict[str, str],
) -> None:
    async with gateway(peers, user="slow") as client:
        started = time.monotonic()
        response = await client.get(f"/orders/{ORDER_ID}/details")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["user"] is None and body["missing"] == ["user"] and body["complete"] is False
    assert body["products"] == PRODUCTS
    assert elapsed < 2 * TIMEOUT_S


async def test_a_refused_catalog_and_a_5xx_product_are_gaps(peers: dict[str, str]) -> None:
    async with gateway(peers, catalog="closed") as client:
        refused = (await client.get(f"/orders/{ORDER_ID}/details")).json()
    assert refused["products"] == {"SKU-1": None, "SKU-2": None}
    assert refused["missing"] == ["product:SKU-1", "product:SKU-2"]
    assert refused["user"] == USER and refused["complete"] is False

    async with gateway(peers) as client:
        response = await client.get(f"/orders/{ORDER_WITH_BROKEN_SKU}/details")
    assert response.status_code == 200
    body = response.json()
    assert body["products"] == {"SKU-1": PRODUCTS["SKU-1"], "SKU-BROKEN": None}
    assert body["missing"] == ["product:SKU-BROKEN"]


async def test_everything_but_the_order_down_is_still_an_answer(peers: dict[str, str]) -> None:
    async with gateway(peers, user="slow", catalog="slow") as client:
        started = time.monotonic()
        response = await client.get(f"/orders/{ORDER_ID}/details")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["missing"] == ["user", "product:SKU-1", "product:SKU-2"]
    assert elapsed < 2 * TIMEOUT_S


@pytest.mark.parametrize("order_service", ["closed", "slow"])
async def test_an_order_service_that_cannot_answer_is_a_503_with_retry_after(
    peers: dict[str, str], order_service: str
) -> None:
    async with gateway(peers, order=order_service) as client:
        started = time.monotonic()
        response = await client.get(f"/orders/{ORDER_ID}/details")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503
    assert elapsed < 2 * TIMEOUT_S


async def test_an_unknown_order_is_a_404_problem(peers: dict[str, str]) -> None:
    async with gateway(peers) as client:
        response = await client.get(f"/orders/{UNKNOWN_ORDER}/details")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/order-not-found")


@pytest.mark.parametrize(
    "path",
    [
        "/orders/not-a-uuid/details",
        "/orders/not-a-uuid/summary",
        f"/orders/{ORDER_ID}/summary?min_version=0",
        f"/orders/{ORDER_ID}/summary?min_version=two",
        f"/orders/{ORDER_ID}/summary?min_version=1000001",
        "/users/a%20b/orders",
        "/users/user-1/orders?limit=0",
        "/users/user-1/orders?limit=101",
        "/users/user-1/orders?offset=100001",
        "/users/user-1/orders?offset=-1",
    ],
)
async def test_bad_parameters_are_a_400_before_anyone_is_asked(
    peers: dict[str, str], path: str
) -> None:
    async with gateway(peers, order="closed", order_view="closed") as client:
        response = await client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_summary_is_forwarded_with_status_body_and_retry_after(
    peers: dict[str, str],
) -> None:
    async with gateway(peers) as client:
        current = await client.get(f"/orders/{ORDER_ID}/summary", params={"min_version": 3})
        ahead = await client.get(f"/orders/{ORDER_ID}/summary", params={"min_version": 4})
        unknown = await client.get(f"/orders/{UNKNOWN_ORDER}/summary")
    assert current.status_code == 200
    assert current.json() == {
        "order_id": ORDER_ID,
        "user_id": "user-1",
        "status": "CONFIRMED",
        "version": 3,
    }
    assert ahead.status_code == 503
    assert ahead.headers["retry-after"] == "2"
    assert ahead.headers["content-type"].startswith("application/problem+json")
    assert ahead.json()["title"] == "Not caught up yet"
    assert unknown.status_code == 404 and unknown.json()["title"] == "Order not found"


async def test_a_user_s_orders_are_forwarded_with_paging(peers: dict[str, str]) -> None:
    async with gateway(peers) as client:
        paged = await client.get("/users/user-1/orders", params={"limit": 5, "offset": 10})
        default = await client.get("/users/user-1/orders")
    assert paged.status_code == 200
    assert paged.json() == {"user_id": "user-1", "orders": [ORDER_ID], "limit": 5, "offset": 10}
    assert default.json()["limit"] == 50  # the read model's own default, not the gateway's


async def test_an_unreachable_read_model_is_a_503_with_retry_after(peers: dict[str, str]) -> None:
    async with gateway(peers, order_view="closed") as client:
        summary = await client.get(f"/orders/{ORDER_ID}/summary")
        listing = await client.get("/users/user-1/orders")
    for response in (summary, listing):
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"].startswith("application/problem+json")


# --- the authenticated edge ---------------------------------------------------------------

ROUTES = [
    ("GET", f"/orders/{ORDER_ID}/details"),
    ("GET", f"/orders/{ORDER_ID}/summary"),
    ("GET", "/users/user-1/orders"),
    ("POST", "/orders"),
]
ORDER_BODY = {"items": [{"sku": "SKU-1", "quantity": 2}]}


def _leaks(response: Any) -> bool:
    """Does a response carry anything of the canned order, user or products (beyond the
    path the caller sent, which the problem's ``instance`` repeats)?"""
    body = {k: v for k, v in response.json().items() if k != "instance"}
    text = json.dumps(body) + json.dumps(dict(response.headers))
    return any(secret in text for secret in ("user-1", "SKU-1", "Alice", "alice@", "CONFIRMED"))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "expired",
        "unsigned",
        "foreign-issuer",
        "stranger-key",
    ],
)
async def test_without_a_valid_token_every_route_is_a_401_and_nothing_is_asked(
    peers: dict[str, str], authorization: str | None
) -> None:
    now = int(time.time())
    forged = {
        "expired": bearer("user-1", exp=now - 120)["Authorization"],
        "unsigned": "Bearer "
        + jwt.encode(
            {"iss": IDENTITY.issuer, "aud": IDENTITY.audience, "sub": "user-1", "exp": now + 60},
            None,
            algorithm="none",
        ),
        "foreign-issuer": bearer("user-1", iss="https://idp.example.com")["Authorization"],
        "stranger-key": "Bearer "
        + LocalIdentity.new().sign(
            {"iss": IDENTITY.issuer, "aud": IDENTITY.audience, "sub": "user-1", "exp": now + 60},
            kid=IDENTITY.key_id,
        ),
    }
    headers = {"Authorization": forged.get(authorization, authorization)} if authorization else {}
    async with gateway(peers, as_user=headers) as client:
        if not authorization:
            client.headers.pop("Authorization", None)
        for method, path in ROUTES:
            response = await client.request(
                method, path, json=ORDER_BODY if method == "POST" else None
            )
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["www-authenticate"].startswith('Bearer realm="polysaga"')
            assert not _leaks(response)
    assert ASKED == []


async def test_another_customer_s_order_is_the_404_of_an_unknown_one(
    peers: dict[str, str],
) -> None:
    async with gateway(peers, as_user=bearer("user-2")) as client:
        foreign = await client.get(f"/orders/{ORDER_ID}/details")
        asked_for_foreign = list(ASKED)
        unknown = await client.get(f"/orders/{UNKNOWN_ORDER}/details")
        foreign_summary = await client.get(f"/orders/{ORDER_ID}/summary")
        unknown_summary = await client.get(f"/orders/{UNKNOWN_ORDER}/summary")
        foreign_list = await client.get("/users/user-1/orders")
        own_list = await client.get("/users/user-2/orders")

    def shape(response: Any, order_id: str) -> tuple[int, str, str]:
        body = response.json()
        return response.status_code, body["type"], body["detail"].replace(order_id, "<id>")

    assert shape(foreign, ORDER_ID) == shape(unknown, UNKNOWN_ORDER)
    assert shape(foreign, ORDER_ID)[0] == 404
    assert shape(foreign_summary, ORDER_ID) == shape(unknown_summary, UNKNOWN_ORDER)
    assert shape(foreign_summary, ORDER_ID) == shape(foreign, ORDER_ID)
    for response in (foreign, foreign_summary):
        assert not _leaks(response)
    # Only the order itself was read to find out whose it is; no user, no product.
    assert asked_for_foreign == [("GET", f"/orders/{ORDER_ID}")]
    assert foreign_list.status_code == 403
    assert foreign_list.json()["type"].endswith("/forbidden")
    assert 'error="insufficient_scope"' in foreign_list.headers["www-authenticate"]
    assert not _leaks(foreign_list)
    assert own_list.status_code == 200


async def test_an_operator_sees_every_customer_s_orders(peers: dict[str, str]) -> None:
    async with gateway(peers, as_user=bearer("ops-1", "operator")) as client:
        details = await client.get(f"/orders/{ORDER_ID}/details")
        summary = await client.get(f"/orders/{ORDER_ID}/summary")
        listing = await client.get("/users/user-1/orders")
    assert details.status_code == 200 and details.json()["user"] == USER
    assert summary.status_code == 200 and listing.status_code == 200


async def test_a_customer_places_an_order_as_the_token_s_subject(peers: dict[str, str]) -> None:
    PLACED.clear()
    async with gateway(peers, as_user=bearer("user-9")) as client:
        placed = await client.post("/orders", json=ORDER_BODY, headers={"Idempotency-Key": "k-1"})
        impostor = await client.post(
            "/orders", json={**ORDER_BODY, "user_id": "user-1"}, headers={"Idempotency-Key": "k2"}
        )
        unknown = await client.post(
            "/orders", json={"items": [{"sku": "SKU-UNKNOWN", "quantity": 1}]}
        )
    async with gateway(peers, as_user=bearer("user-8")) as client:
        same_key = await client.post("/orders", json=ORDER_BODY, headers={"Idempotency-Key": "k-1"})
    assert placed.status_code == 202 and set(placed.json()) == {"order_id", "version"}
    assert impostor.status_code == 400  # a body naming a user is refused, not obeyed
    assert unknown.status_code == 422  # the order service's refusal, passed through
    assert same_key.status_code == 202
    first, _, second = PLACED
    assert first["body"] == {"user_id": "user-9", "items": ORDER_BODY["items"]}
    assert second["body"]["user_id"] == "user-8"
    # Each customer's key is their own: the order service sees two different keys.
    assert first["idempotency_key"] not in (None, "k-1", second["idempotency_key"])
    assert PLACED[1]["idempotency_key"] is None


async def test_a_token_whose_subject_cannot_be_a_user_id_cannot_place_orders(
    peers: dict[str, str],
) -> None:
    PLACED.clear()
    async with gateway(peers, as_user=bearer("auth0|not an id")) as client:
        response = await client.post("/orders", json=ORDER_BODY)
    assert response.status_code == 403
    assert PLACED == []
