"""A projection built from history: a stack runs without the sales service while 300 orders
(both saga styles, failures and scarce stock among them) go through; then sales starts for
the first time, catches up from the start of the ORDERS stream, and its figures equal those
computed from the order service's own API. It stays live for the orders that follow, and a
rebuild reproduces it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from polysaga_tools.demo import DemoPlan, place_all, prepare_workload, wait_settled
from polysaga_tools.invariants import CheckReport, check
from polysaga_tools.quiescence import wait_quiescent
from polysaga_tools.stack import LocalStack
from polysaga_tools.stack_access import stack_client

Figures = dict[str, dict[str, Any]]


def scratch_dir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="polysaga-sales-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    return root


@pytest.fixture
async def stack_without_sales() -> AsyncIterator[LocalStack]:
    root = scratch_dir()
    stack = LocalStack(root / "data", root / "stack.json", deferred=frozenset({"sales"}))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()
    shutil.rmtree(root, ignore_errors=True)


def cli(stack: LocalStack, *args: str) -> list[str]:
    return [sys.executable, "-m", "polysaga_tools", *args, "--attach", str(stack.state_file)]


def projections(stack: LocalStack) -> dict[str, Any]:
    result = subprocess.run(
        cli(stack, "projections", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


async def expected_figures(http: httpx.AsyncClient, order_url: str) -> tuple[Figures, ...]:
    """Sales as the order service's API tells them: every CONFIRMED order, its lines at their
    unit prices, on the UTC day of its OrderConfirmed."""
    products: Figures = defaultdict(lambda: {"units": 0, "revenue": Decimal("0")})
    customers: Figures = defaultdict(lambda: {"orders": 0, "spent": Decimal("0")})
    days: Figures = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": Decimal("0")})
    after: str | None = None
    while True:
        params: dict[str, Any] = {"status": "CONFIRMED", "limit": 500}
        if after:
            params["after"] = after
        page = (await http.get(f"{order_url}/orders", params=params)).raise_for_status().json()
        for listed in page["orders"]:
            order_id = listed["order_id"]
            order = (await http.get(f"{order_url}/orders/{order_id}")).json()
            events = (await http.get(f"{order_url}/orders/{order_id}/events")).json()
            (confirmed,) = [e for e in events if e["type"].startswith("OrderConfirmed.")]
            day = confirmed["occurred_at"][:10]  # RFC 3339 in UTC
            units = 0
            for item in order["items"]:
                products[item["sku"]]["units"] += item["quantity"]
                products[item["sku"]]["revenue"] += Decimal(item["unit_price"]) * item["quantity"]
                units += item["quantity"]
            customers[order["user_id"]]["orders"] += 1
            customers[order["user_id"]]["spent"] += Decimal(order["total"])
            days[day]["orders"] += 1
            days[day]["units"] += units
            days[day]["revenue"] += Decimal(order["total"])
        after = page["next_after"]
        if after is None:
            return products, customers, days


async def served_figures(
    http: httpx.AsyncClient, sales_url: str, expected: tuple[Figures, ...]
) -> tuple[Figures, ...]:
    products, customers, days = expected
    served: tuple[Figures, ...] = ({}, {}, {})
    for sku in products:
        body = (await http.get(f"{sales_url}/sales/products/{sku}")).raise_for_status().json()
        served[0][sku] = {"units": body["units"], "revenue": Decimal(body["revenue"])}
    for user in customers:
        body = (await http.get(f"{sales_url}/sales/customers/{user}")).raise_for_status().json()
        served[1][user] = {"orders": body["orders"], "spent": Decimal(body["spent"])}
    for day in days:
        body = (await http.get(f"{sales_url}/sales/days/{day}")).raise_for_status().json()
        served[2][day] = {
            "orders": body["orders"],
            "units": body["units"],
            "revenue": Decimal(body["revenue"]),
        }
    return served


async def place_orders(stack: LocalStack, plan: DemoPlan) -> CheckReport:
    """The demo's workload, placed and run to its end, with the write side's invariants
    checked (the read side is not this test's business)."""
    state = stack.state()
    services = state["services"]
    async with stack_client(state, timeout=30) as client:
        workload = await prepare_workload(client, services, plan)
        order_ids = await place_all(client, services["order"], workload.orders, plan.concurrency)
        await wait_settled(client, services["order"], order_ids, timeout_s=300)
        await wait_quiescent(client, state, 300)
        return await check(client, services, order_ids, workload.baseline)


async def wait_live(stack: LocalStack, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        report = await asyncio.to_thread(projections, stack)
        sales = report["sales"]
        if sales["state"] == "live" and all(s["pending"] == 0 for s in sales["streams"]):
            return report
        assert time.monotonic() < deadline, f"sales not live within {timeout_s} s: {sales}"
        await asyncio.sleep(1)


@pytest.mark.timeout(1500)
async def test_sales_started_on_a_system_with_history_catches_up_and_agrees(
    stack_without_sales: LocalStack,
) -> None:
    stack = stack_without_sales
    assert "sales" not in stack.state()["services"]
    before = await asyncio.to_thread(projections, stack)
    assert before["sales"]["state"] == "not started"
    plan = DemoPlan(
        orders=300, payment_failure_rate=0.2, scarce_stock=True, seed=3, saga_style="mixed"
    )
    placed = await place_orders(stack, plan)
    assert placed.ok, placed.violations
    assert placed.confirmed > 0 and placed.cancelled > 0
    assert set(placed.by_style) == {"choreography", "orchestration"}

    await stack.start_deferred("sales")
    sales_url = stack.state()["services"]["sales"]
    report = await wait_live(stack)
    (orders_stream,) = report["sales"]["streams"]
    assert orders_stream["stream"] == "ORDERS" and orders_stream["position"] > 0
    assert report["order-view"]["state"] == "live"

    async with httpx.AsyncClient(timeout=10) as http:
        order_url = stack.state()["services"]["order"]
        expected = await expected_figures(http, order_url)
        assert sum(c["orders"] for c in expected[1].values()) == placed.confirmed
        assert await served_figures(http, sales_url, expected) == expected

        # Live from here on: the next orders are counted as they are confirmed.
        more = await place_orders(stack, DemoPlan(orders=20, seed=4, saga_style="mixed"))
        assert more.ok and more.confirmed > 0
        await wait_live(stack)
        expected = await expected_figures(http, order_url)
        assert await served_figures(http, sales_url, expected) == expected

    rebuilt = await asyncio.to_thread(
        subprocess.run,
        cli(stack, "rebuild", "sales"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "rebuilt" in rebuilt.stdout
