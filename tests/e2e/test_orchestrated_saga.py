"""The orchestrated saga end to end, on the processes `polysaga up` runs: every outcome, a
step that runs out of time, the saga's state at the orchestrator, and the same invariants as
the choreography's."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx

from conftest import CHARGE_PAYMENT_TIMEOUT_S, Stack
from stack_client import StackClient

ORCHESTRATION = "orchestration"


def client(stack: Stack, http: httpx.AsyncClient) -> StackClient:
    return StackClient(http, stack.state["services"])


async def saga_of(stack: Stack, http: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await http.get(f"{stack.url('orchestrator')}/sagas/{order_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def steps(saga: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["step"], s["status"]) for s in saga["steps"]]


async def test_an_orchestrated_order_is_reserved_charged_and_confirmed(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-otea", f"{unique}-oann"
    await c.seed(prices={sku: "2.50"}, stock={sku: 10}, balances={user: "100.00"})
    order = await c.wait_ended(await c.place(user, {sku: 4}, saga=ORCHESTRATION))
    assert (order["status"], order["saga"]) == ("CONFIRMED", ORCHESTRATION)
    assert await c.stock(sku) == {"sku": sku, "available": 6, "reserved": 4}
    assert await c.balance(user) == "90.00"
    (payment,) = await c.payments(order["order_id"])
    assert (payment["status"], payment["amount"]) == ("CHARGED", "10.00")
    saga = await saga_of(stack, http, order["order_id"])
    assert (saga["order_id"], saga["style"], saga["state"]) == (
        order["order_id"],
        ORCHESTRATION,
        "Completed",
    )
    assert steps(saga) == [
        ("ReserveStock", "sent"),
        ("ReserveStock", "succeeded"),
        ("ChargePayment", "sent"),
        ("ChargePayment", "succeeded"),
    ]
    times = [s["at"] for s in saga["steps"]]
    assert times == sorted(times)


async def test_an_orchestrated_payment_failure_releases_the_stock(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-ogold", f"{unique}-opoor"
    await c.seed(prices={sku: "30.00"}, stock={sku: 5}, balances={user: "1.00"})
    order = await c.wait_ended(await c.place(user, {sku: 2}, saga=ORCHESTRATION))
    assert order["status"] == "CANCELLED"
    assert order["cancel_reason"] == "payment_failed: insufficient_funds"
    saga = await saga_of(stack, http, order["order_id"])
    assert saga["state"] == "Compensated"
    assert steps(saga)[-3:] == [
        ("ChargePayment", "failed"),
        ("ReleaseStock", "sent"),
        ("ReleaseStock", "succeeded"),
    ]
    assert await c.stock(sku) == {"sku": sku, "available": 5, "reserved": 0}
    assert (await c.reservation(order["order_id"]) or {})["status"] == "RELEASED"
    assert await c.balance(user) == "1.00"


async def test_an_orchestrated_order_without_stock_is_cancelled_at_once(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-orare", f"{unique}-obo"
    await c.seed(prices={sku: "5.00"}, stock={sku: 1}, balances={user: "100.00"})
    order = await c.wait_ended(await c.place(user, {sku: 2}, saga=ORCHESTRATION))
    assert order["cancel_reason"] == "stock_unavailable: insufficient_stock"
    saga = await saga_of(stack, http, order["order_id"])
    assert (saga["state"], steps(saga)) == (
        "Compensated",
        [("ReserveStock", "sent"), ("ReserveStock", "failed")],
    )
    assert await c.payments(order["order_id"]) == []  # payment never heard of it


async def test_a_charge_that_times_out_is_refunded_even_when_it_lands_late(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    """Payment is paused past ChargePayment's timeout: the orchestrator compensates (refund,
    then release) while the charge is still queued; payment wakes, charges, then refunds."""
    c = client(stack, http)
    sku, user = f"{unique}-oslow", f"{unique}-opat"
    await c.seed(prices={sku: "3.00"}, stock={sku: 4}, balances={user: "50.00"})
    payment = stack.pid("payment")

    async def reserved(order_id: str) -> bool:
        found = await c.reservation(order_id)
        return found is not None and found["status"] == "RESERVED"

    order_id = await c.place(user, {sku: 2}, saga=ORCHESTRATION)
    os.kill(payment, signal.SIGSTOP)
    try:
        for _ in range(200):  # the reservation lands before the charge is sent
            if await reserved(order_id):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(CHARGE_PAYMENT_TIMEOUT_S + 2)
        saga = await saga_of(stack, http, order_id)
        assert saga["state"] == "Compensating"
        assert ("ChargePayment", "timed_out") in steps(saga)
    finally:
        os.kill(payment, signal.SIGCONT)
    order = await c.wait_ended(order_id, timeout_s=60)
    assert order["cancel_reason"] == "step_timeout: ChargePayment"
    saga = await saga_of(stack, http, order_id)
    assert saga["state"] == "Compensated"
    done = steps(saga)
    assert done.index(("RefundPayment", "succeeded")) < done.index(("ReleaseStock", "succeeded"))
    assert await c.stock(sku) == {"sku": sku, "available": 4, "reserved": 0}
    assert await c.balance(user) == "50.00"
    (record,) = await c.payments(order_id)
    assert record["status"] in {"REFUNDED", "CANCELLED"}  # charged then refunded, or never


async def test_a_choreographed_order_has_no_saga_at_the_orchestrator(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku, user = f"{unique}-ochor", f"{unique}-oeve"
    await c.seed(prices={sku: "1.00"}, stock={sku: 2}, balances={user: "5.00"})
    order = await c.wait_ended(await c.place(user, {sku: 1}))
    assert order["saga"] == "choreography"
    response = await http.get(f"{stack.url('orchestrator')}/sagas/{order['order_id']}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_saga_style_is_refused_and_creates_nothing(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    c = client(stack, http)
    sku = f"{unique}-ostyle"
    await c.seed(prices={sku: "1.00"}, stock={}, balances={})
    before = (await http.get(f"{c.order_url}/stats")).json()
    response = await http.post(
        f"{c.order_url}/orders",
        json={"user_id": "x", "items": [{"sku": sku, "quantity": 1}], "saga": "telepathy"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await http.get(f"{c.order_url}/stats")).json() == before
