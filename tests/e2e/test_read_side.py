"""The read side end to end: users and products from their own services, the order-view
read model, read-your-writes, the gateway's composition (also degraded), notifications,
and rebuilding the view from event history."""

from __future__ import annotations

import mailbox
import os
import signal
import time
from typing import Any

import httpx

from conftest import Stack
from stack_client import StackClient
from waiting import eventually


async def register_user(http: httpx.AsyncClient, stack: Stack, name: str, email: str) -> str:
    response = await http.post(f"{stack.url('user')}/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return str(response.json()["user_id"])


async def create_product(
    http: httpx.AsyncClient, stack: Stack, sku: str, name: str, price: str
) -> None:
    response = await http.post(
        f"{stack.url('catalog')}/products", json={"sku": sku, "name": name, "price": price}
    )
    assert response.status_code == 201, response.text


async def confirmed_order(stack: Stack, http: httpx.AsyncClient, unique: str) -> dict[str, Any]:
    """A user and a product created through their services, and a confirmed order."""
    c = StackClient(http, stack.state["services"])
    sku = f"{unique}-lamp"
    user_id = await register_user(http, stack, "Grace Hopper", f"grace-{unique}@example.com")
    await create_product(http, stack, sku, "Desk lamp", "12.50")

    async def price_learned() -> bool:
        response = await http.get(f"{c.order_url}/prices/{sku}")
        return response.status_code == 200 and response.json()["price"] == "12.50"

    await eventually(price_learned)
    await c.seed(prices={}, stock={sku: 5}, balances={user_id: "100.00"})
    order = await c.wait_ended(await c.place(user_id, {sku: 2}))
    assert order["status"] == "CONFIRMED"
    return {"order": order, "user_id": user_id, "sku": sku}


async def test_the_read_model_converges_and_serves_read_your_writes(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    made = await confirmed_order(stack, http, unique)
    order = made["order"]
    view = stack.url("order-view")

    async def converged() -> dict[str, Any] | None:
        response = await http.get(
            f"{view}/orders/{order['order_id']}/summary",
            params={"min_version": order["version"]},
        )
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        # min_version covers the order's own stream; the payment step comes on another
        # stream and may be applied a moment later.
        steps = {h["step"] for h in body["history"]}
        return body if {"PaymentProcessed", "StockReserved"} <= steps else None

    summary = await eventually(converged)
    assert summary["status"] == "CONFIRMED"
    assert summary["user"] == {"name": "Grace Hopper", "email": f"grace-{unique}@example.com"}
    assert summary["total"] == "25.00" and summary["item_count"] == 2
    assert [i["name"] for i in summary["items"]] == ["Desk lamp"]
    steps = [h["step"] for h in summary["history"]]
    assert steps[0] == "OrderPlaced" and "PaymentProcessed" in steps and "OrderConfirmed" in steps

    started = time.monotonic()
    too_new = await http.get(
        f"{view}/orders/{order['order_id']}/summary", params={"min_version": 99}
    )
    assert too_new.status_code == 503
    assert "retry-after" in too_new.headers
    assert time.monotonic() - started < 10

    page = await http.get(f"{view}/users/{made['user_id']}/orders", params={"limit": 10})
    assert [o["order_id"] for o in page.json()["orders"]] == [order["order_id"]]


async def test_the_gateway_composes_and_degrades_promptly_when_a_dependency_hangs(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    made = await confirmed_order(stack, http, unique)
    details_url = f"{stack.url('gateway')}/orders/{made['order']['order_id']}/details"

    async def composed() -> dict[str, Any] | None:
        body = (await http.get(details_url)).json()
        return body if body["complete"] else None  # a busy dependency may time out once

    complete = await eventually(composed)
    assert complete["missing"] == []
    assert complete["user"]["name"] == "Grace Hopper"
    assert complete["products"][made["sku"]]["name"] == "Desk lamp"

    user_pid = stack.pid("user")
    os.kill(user_pid, signal.SIGSTOP)  # accepts connections, never answers: the worst case
    try:
        started = time.monotonic()
        degraded = await http.get(details_url)
        elapsed = time.monotonic() - started
    finally:
        os.kill(user_pid, signal.SIGCONT)
    assert degraded.status_code == 200
    body = degraded.json()
    assert body["complete"] is False and "user" in body["missing"]
    assert body["user"] is None and body["order"]["order_id"] == made["order"]["order_id"]
    assert elapsed < 5, f"the gateway took {elapsed:.1f} s"


async def test_one_email_per_order_outcome(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    made = await confirmed_order(stack, http, unique)
    order_id = made["order"]["order_id"]
    notifications = stack.url("notification")

    async def sent() -> list[dict[str, Any]]:
        response = await http.get(f"{notifications}/notifications", params={"order_id": order_id})
        return response.json() if response.status_code == 200 else []  # type: ignore[no-any-return]

    (record,) = await eventually(sent)
    assert record["to"] == f"grace-{unique}@example.com"
    maildir = mailbox.Maildir(stack.state["smtp"]["maildir"], create=False)
    mails = [m for m in maildir if order_id in (m.get("Subject", "") + str(m.get_payload()))]
    assert len(mails) == 1
    assert mails[0]["To"] == f"grace-{unique}@example.com"


def test_rebuilding_the_view_reproduces_it(stack: Stack) -> None:
    result = stack.cli("rebuild", "order-view")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "same digest" in result.stdout
