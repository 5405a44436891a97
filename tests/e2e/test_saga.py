"""The saga end to end, on the processes `polysaga up` runs: every outcome and compensation."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import httpx

from conftest import ORDER_DEADLINE_S, Stack
from stack_client import StackClient
from waiting import eventually


def client(stack: Stack, http: httpx.AsyncClient) -> StackClient:
    return StackClient(http, stack.state["services"])


async def test_happy_path_confirms_reserves_and_charges(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-tea", f"{unique}-ann"
    await c.seed(prices={sku: "2.50"}, stock={sku: 10}, balances={user: "100.00"})
    order_id = await c.place(user, {sku: 4})
    order = await c.wait_ended(order_id)
    assert order["status"] == "CONFIRMED"
    assert order["total"] == "10.00" and order["version"] == 3
    assert order["paid_at"] is not None
    assert await c.stock(sku) == {"sku": sku, "available": 6, "reserved": 4}
    assert await c.balance(user) == "90.00"
    (payment,) = await c.payments(order_id)
    assert (payment["status"], payment["amount"]) == ("CHARGED", "10.00")
    events = (await http.get(f"{c.order_url}/orders/{order_id}/events")).json()
    assert [e["type"] for e in events] == [
        "OrderPlaced.v1",
        "PaymentReceived.v1",
        "OrderConfirmed.v1",
    ]


async def test_not_enough_stock_cancels_without_charging(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-rare", f"{unique}-bo"
    await c.seed(prices={sku: "5.00"}, stock={sku: 1}, balances={user: "100.00"})
    order = await c.wait_ended(await c.place(user, {sku: 2}))
    assert order["status"] == "CANCELLED"
    assert order["cancel_reason"].startswith("stock_unavailable")
    assert await c.stock(sku) == {"sku": sku, "available": 1, "reserved": 0}
    assert await c.balance(user) == "100.00"

    # Payment's tombstone is written when OrderCancelled reaches it, after the cancel: wait.
    async def payment_statuses() -> list[str]:
        return [p["status"] for p in await c.payments(order["order_id"])]

    assert await eventually(payment_statuses, timeout_s=30) == ["CANCELLED"]


async def test_payment_failure_cancels_and_releases_stock(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-gold", f"{unique}-poor"
    await c.seed(prices={sku: "30.00"}, stock={sku: 5}, balances={user: "1.00"})
    order = await c.wait_ended(await c.place(user, {sku: 2}))
    assert order["status"] == "CANCELLED"
    assert order["cancel_reason"] == "payment_failed: insufficient_funds"
    # The release is the compensation: it happens after the cancel, so wait for it.
    for _ in range(100):
        reservation = await c.reservation(order["order_id"])
        if reservation and reservation["status"] == "RELEASED":
            break
        await asyncio.sleep(0.05)
    assert reservation is not None and reservation["status"] == "RELEASED"
    assert await c.stock(sku) == {"sku": sku, "available": 5, "reserved": 0}
    assert await c.balance(user) == "1.00"


async def test_payment_landing_after_the_deadline_is_compensated(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    """Payment is frozen past the deadline; the order is cancelled; when payment wakes up,
    whatever it does with the late StockReserved is undone: no money is taken."""
    c = client(stack, http)
    sku, user = f"{unique}-late", f"{unique}-cy"
    await c.seed(prices={sku: "7.00"}, stock={sku: 10}, balances={user: "100.00"})
    payment_pid = stack.pid("payment")
    os.kill(payment_pid, signal.SIGSTOP)
    try:
        order_ids = [await c.place(user, {sku: 1}) for _ in range(3)]
        orders = [await c.wait_ended(o, timeout_s=ORDER_DEADLINE_S + 20) for o in order_ids]
    finally:
        os.kill(payment_pid, signal.SIGCONT)
    assert {o["status"] for o in orders} == {"CANCELLED"}
    assert {o["cancel_reason"] for o in orders} == {"deadline_exceeded"}
    for order_id in order_ids:
        for _ in range(200):
            payments = await c.payments(order_id)
            if payments and payments[0]["status"] in ("REFUNDED", "CANCELLED"):
                break
            await asyncio.sleep(0.05)
        assert payments and payments[0]["status"] in ("REFUNDED", "CANCELLED"), payments
    assert await c.balance(user) == "100.00"
    for _ in range(100):
        if (await c.stock(sku))["reserved"] == 0:
            break
        await asyncio.sleep(0.05)
    assert await c.stock(sku) == {"sku": sku, "available": 10, "reserved": 0}


async def test_fifty_concurrent_orders_for_the_last_ten_units_confirm_exactly_ten(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-last", f"{unique}-rich"
    await c.seed(prices={sku: "1.00"}, stock={sku: 10}, balances={user: "1000.00"})
    order_ids = await asyncio.gather(*(c.place(user, {sku: 1}) for _ in range(50)))
    orders = await asyncio.gather(*(c.wait_ended(o) for o in order_ids))
    assert sum(o["status"] == "CONFIRMED" for o in orders) == 10
    assert await c.stock(sku) == {"sku": sku, "available": 0, "reserved": 10}
    assert await c.balance(user) == "990.00"


async def test_a_retried_post_with_the_same_idempotency_key_creates_one_order(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-idem", f"{unique}-dee"
    await c.seed(prices={sku: "3.00"}, stock={sku: 10}, balances={user: "100.00"})
    key = str(uuid.uuid4())
    first, second = [await c.place(user, {sku: 1}, key=key) for _ in range(2)]
    concurrent = await asyncio.gather(*(c.place(user, {sku: 1}, key=key) for _ in range(5)))
    assert first == second and set(concurrent) == {first}
    await c.wait_ended(first)
    assert await c.stock(sku) == {"sku": sku, "available": 9, "reserved": 1}
    reused = await http.post(
        f"{c.order_url}/orders",
        headers={"Idempotency-Key": key},
        json={"user_id": user, "items": [{"sku": sku, "quantity": 2}]},
    )
    assert reused.status_code == 422
    assert reused.headers["content-type"].startswith("application/problem+json")
