"""The saga's invariants, checked from the outside through the services' HTTP APIs.

Given a baseline (the stock and balances a run started from) the conservation laws are
checked exactly; without one, the stack is checked for self-consistency: every order's
reservation and payment agree with its outcome, and held stock equals confirmed demand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from polysaga.money import parse_money

INVARIANTS = (
    "every_saga_ended",
    "no_oversell",
    "stock_conserved",
    "money_conserved",
    "no_double_charge",
    "cancelled_orders_compensated",
)


@dataclass
class Baseline:
    stock: dict[str, int] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class OrderFacts:
    order: dict[str, Any]
    reservation: dict[str, Any] | None
    payments: list[dict[str, Any]]


@dataclass
class CheckReport:
    orders: int
    confirmed: int
    cancelled: int
    unfinished: int
    compensations: int
    invariants: dict[str, bool]
    violations: list[str]

    @property
    def ok(self) -> bool:
        return all(self.invariants.values())


async def list_order_ids(client: httpx.AsyncClient, order_url: str) -> list[str]:
    ids: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if after:
            params["after"] = after
        page = (await client.get(f"{order_url}/orders", params=params)).raise_for_status().json()
        ids += [o["order_id"] for o in page["orders"]]
        after = page["next_after"]
        if after is None:
            return ids


async def gather_facts(
    client: httpx.AsyncClient, services: dict[str, str], order_ids: list[str], concurrency: int = 16
) -> list[OrderFacts]:
    limit = asyncio.Semaphore(concurrency)

    async def facts(order_id: str) -> OrderFacts:
        async with limit:
            order = (await client.get(f"{services['order']}/orders/{order_id}")).raise_for_status()
            reservation = await client.get(f"{services['inventory']}/reservations/{order_id}")
            payments = await client.get(
                f"{services['payment']}/payments", params={"order_id": order_id}
            )
            return OrderFacts(
                order.json(),
                reservation.json() if reservation.status_code == 200 else None,
                payments.raise_for_status().json(),
            )

    return list(await asyncio.gather(*(facts(i) for i in order_ids)))


async def check(
    client: httpx.AsyncClient,
    services: dict[str, str],
    order_ids: list[str] | None = None,
    baseline: Baseline | None = None,
) -> CheckReport:
    if order_ids is None:
        order_ids = await list_order_ids(client, services["order"])
    all_facts = await gather_facts(client, services, order_ids)
    violations: list[str] = []
    status = Counter(f.order["status"] for f in all_facts)

    demand: Counter[str] = Counter()
    for f in all_facts:
        if f.order["status"] == "CONFIRMED":
            for item in f.order["items"]:
                demand[item["sku"]] += item["quantity"]
    skus = set(demand) | set(baseline.stock if baseline else {})
    for f in all_facts:
        skus |= {item["sku"] for item in f.order["items"]}
    levels = {}
    for sku in sorted(skus):
        response = await client.get(f"{services['inventory']}/stock/{sku}")
        if response.status_code == 200:
            levels[sku] = response.json()

    no_oversell = True
    stock_conserved = True
    for sku, level in levels.items():
        if level["available"] < 0 or level["reserved"] < 0:
            no_oversell = False
            violations.append(f"{sku}: negative stock {level}")
        if baseline and sku in baseline.stock:
            if demand[sku] > baseline.stock[sku]:
                no_oversell = False
                violations.append(f"{sku}: {demand[sku]} confirmed > {baseline.stock[sku]} stocked")
            if level["available"] + level["reserved"] != baseline.stock[sku]:
                stock_conserved = False
                violations.append(f"{sku}: available+reserved != initial {baseline.stock[sku]}")
        if level["reserved"] != demand[sku]:
            stock_conserved = False
            violations.append(f"{sku}: reserved {level['reserved']} != confirmed {demand[sku]}")

    no_double_charge = True
    compensated = True
    money_consistent = True
    compensations = 0
    for f in all_facts:
        oid, st = f.order["order_id"], f.order["status"]
        charges = [p for p in f.payments if p["status"] == "CHARGED"]
        if len(charges) > 1:
            no_double_charge = False
            violations.append(f"{oid}: {len(charges)} charges")
        if f.reservation and f.reservation["status"] == "RELEASED":
            compensations += 1
        if any(p["status"] == "REFUNDED" for p in f.payments):
            compensations += 1
        if st == "CONFIRMED":
            if len(charges) != 1 or parse_money(charges[0]["amount"]) != parse_money(
                f.order["total"]
            ):
                money_consistent = False
                violations.append(f"{oid}: confirmed but charged {charges}")
            if not f.reservation or f.reservation["status"] != "RESERVED":
                stock_conserved = False
                violations.append(f"{oid}: confirmed without a held reservation")
        elif st == "CANCELLED" and (
            charges or (f.reservation and f.reservation["status"] == "RESERVED")
        ):
            compensated = False
            violations.append(f"{oid}: cancelled but still holds {f.reservation} / {charges}")

    money_conserved = money_consistent
    if baseline and baseline.balances:
        spent: dict[str, Decimal] = {}
        for f in all_facts:
            if f.order["status"] == "CONFIRMED":
                user = f.order["user_id"]
                spent[user] = spent.get(user, Decimal("0")) + parse_money(f.order["total"])
        for user, initial in baseline.balances.items():
            response = await client.get(f"{services['payment']}/accounts/{user}")
            balance = parse_money(response.raise_for_status().json()["balance"])
            if balance + spent.get(user, Decimal("0")) != initial:
                money_conserved = False
                violations.append(f"{user}: balance {balance} + spent != initial {initial}")

    invariants = {
        "every_saga_ended": status["PENDING"] == 0,
        "no_oversell": no_oversell,
        "stock_conserved": stock_conserved,
        "money_conserved": money_conserved,
        "no_double_charge": no_double_charge,
        "cancelled_orders_compensated": compensated,
    }
    if status["PENDING"]:
        violations.append(f"{status['PENDING']} orders still PENDING")
    return CheckReport(
        orders=len(all_facts),
        confirmed=status["CONFIRMED"],
        cancelled=status["CANCELLED"],
        unfinished=status["PENDING"],
        compensations=compensations,
        invariants=invariants,
        violations=violations,
    )


async def dead_lettered(nats_url: str) -> int:
    """Messages in the dead-letter stream (0 if it does not exist yet)."""
    import nats
    from nats.js.errors import NotFoundError

    from polysaga.events.declaration import DEAD_LETTER_STREAM

    nc = await nats.connect(nats_url, max_reconnect_attempts=2)
    try:
        info = await nc.jetstream().stream_info(DEAD_LETTER_STREAM)
        return int(info.state.messages)
    except NotFoundError:
        return 0
    finally:
        await nc.close()
