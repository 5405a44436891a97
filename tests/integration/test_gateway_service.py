"""The gateway in-process against real HTTP peers on free ports: small Litestar apps served
by uvicorn that stand in for order, user, catalog and order-view with canned answers (the
end-to-end tests use the real services), one that answers too late, and a closed port.

Checked: the composed document; a degraded one (a part slow, refused or 5xx) arriving
within about two timeouts; 503 with Retry-After when the order service is down; 404 for an
unknown order; the read model's answers forwarded with status, body and Retry-After."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import uvicorn
from litestar import Litestar, Response, get
from litestar.params import FromPath, FromQuery
from litestar.testing import AsyncTestClient

from gateway.bootstrap import build
from polysaga.app import create_app
from polysaga.settings import ServiceSettings

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


def problem(status: int, title: str, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        {"type": "about:blank", "title": title, "status": status},
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )


# --- test peers: canned stand-ins for the services the gateway calls ---------------------


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
    return Response({"order_id": order_id, "status": "CONFIRMED", "version": 3})


@get("/users/{user_id:str}/orders", sync_to_thread=False)
def peer_user_orders(
    user_id: FromPath[str], limit: FromQuery[int] = 50, offset: FromQuery[int] = 0
) -> dict[str, Any]:
    return {"user_id": user_id, "orders": [ORDER_ID], "limit": limit, "offset": offset}


@get("/{path:path}")
async def peer_too_slow(path: FromPath[str]) -> dict[str, str]:
    await asyncio.sleep(TIMEOUT_S * 6)
    return {"late": path}


@contextmanager
def serving(app: Litestar) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port, in a thread with its own event loop: the
    Litestar test client blocks the test's loop while the gateway handles a request, so a
    peer on that loop could never answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", loop="asyncio", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "test peer did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nobody listens here now: connections are refused


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, str]]:
    healthy = Litestar(
        [peer_order, peer_user, peer_product, peer_summary, peer_user_orders], debug=False
    )
    slow = Litestar([peer_too_slow])
    with serving(healthy) as healthy_url, serving(slow) as slow_url:
        yield {"healthy": healthy_url, "slow": slow_url, "closed": closed_port_url()}


@asynccontextmanager
async def gateway(
    peers: Mapping[str, str], **overrides: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    """A gateway whose dependencies are all the healthy peer, except ``overrides``
    (service name -> "slow" | "closed")."""
    urls = {name: peers["healthy"] for name in ("order", "user", "catalog", "order-view")}
    urls |= {name.replace("_", "-"): peers[kind] for name, kind in overrides.items()}
    settings = ServiceSettings(
        service_name="gateway", service_urls=urls, dependency_timeout_s=TIMEOUT_S
    )
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
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
    assert current.json() == {"order_id": ORDER_ID, "status": "CONFIRMED", "version": 3}
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
