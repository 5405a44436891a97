"""A service SIGKILLed in the middle of sagas is restarted by the supervisor, and every saga
still ends with the invariants intact."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest

from conftest import Stack
from stack_client import StackClient


async def wait_restarted(stack: Stack, name: str, old_pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = stack.state["processes"].get(name)
        if pid and pid != old_pid:
            async with httpx.AsyncClient(timeout=1) as http:
                try:
                    if (await http.get(f"{stack.url(name)}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} was not restarted within {timeout_s} s")


@pytest.mark.parametrize("victim", ["inventory", "payment", "order"])
async def test_service_killed_mid_saga_is_restarted_and_every_saga_ends(
    stack: Stack, http: httpx.AsyncClient, unique: str, victim: str
) -> None:
    c = StackClient(http, stack.state["services"])
    skus = [f"{unique}-k{i}" for i in range(3)]
    user = f"{unique}-kim"
    await c.seed(
        prices={s: "1.00" for s in skus}, stock={s: 40 for s in skus}, balances={user: "80.00"}
    )
    restarts_before = stack.state["restarts"][victim]

    async def place(i: int) -> str:
        for _ in range(100):  # the order service itself may be the one down
            try:
                return await c.place(user, {skus[i % 3]: 1 + i % 2}, key=f"{unique}-{i}")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        raise AssertionError("could not place an order")

    first = await asyncio.gather(*(place(i) for i in range(30)))
    old_pid = stack.pid(victim)
    os.kill(old_pid, signal.SIGKILL)
    rest = await asyncio.gather(*(place(i) for i in range(30, 60)))
    await wait_restarted(stack, victim, old_pid)
    assert stack.state["restarts"][victim] == restarts_before + 1

    orders = await asyncio.gather(*(c.wait_ended(o, timeout_s=60) for o in first + rest))
    assert {o["status"] for o in orders} <= {"CONFIRMED", "CANCELLED"}
    # Conservation for this test's SKUs and user.
    confirmed = [o for o in orders if o["status"] == "CONFIRMED"]
    for sku in skus:
        held = sum(i["quantity"] for o in confirmed for i in o["items"] if i["sku"] == sku)
        for _ in range(100):
            level = await c.stock(sku)
            if level["reserved"] == held:
                break
            await asyncio.sleep(0.1)
        assert level == {"sku": sku, "available": 40 - held, "reserved": held}
    # Refunds of orders cancelled after their charge (deadline under load) land eventually.
    spent = sum(float(o["total"]) for o in confirmed)
    for _ in range(100):
        balance = float(await c.balance(user))
        if balance == pytest.approx(80.0 - spent):
            break
        await asyncio.sleep(0.1)
    assert balance == pytest.approx(80.0 - spent)


def test_check_command_reports_every_invariant_holding(stack: Stack) -> None:
    result = stack.cli("check", "--json", timeout_s=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert report["unfinished"] == 0 and report["orders"] > 0
    assert all(report["invariants"].values()), report


def test_demo_attached_to_the_stack_exits_zero_with_compensations(stack: Stack) -> None:
    result = stack.cli(
        "demo",
        "--orders",
        "80",
        "--concurrency",
        "16",
        "--payment-failure-rate",
        "0.2",
        "--scarce-stock",
        "--seed",
        "7",
        "--json",
    )
    assert result.stdout.strip(), f"no report (exit {result.returncode}): {result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert report["orders"] == 80 and report["unfinished"] == 0
    assert report["confirmed"] > 0 and report["cancelled"] > 0 and report["compensations"] > 0
    assert set(report["invariants"]) == {
        "every_saga_ended",
        "no_oversell",
        "stock_conserved",
        "money_conserved",
        "no_double_charge",
        "cancelled_orders_compensated",
        "read_model_converged",
        "composition_matches_read_model",
        "rebuild_reproduces_read_model",
    }
    assert all(report["invariants"].values())
