"""The saga's invariants, checked from the outside through the services' HTTP APIs.

Given a baseline (the stock and balances a run started from) the conservation laws are
checked exactly; without one, the stack is checked for self-consistency: every order's
reservation and payment agree with its outcome, and held stock equals confirmed demand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
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
    "orchestrated_sagas_agree",
)
# An orchestrated order's status and its saga's state at the orchestrator, once both ended.
# A shipped or delivered order was confirmed first: for every invariant it is a sale.
SOLD = frozenset({"CONFIRMED", "SHIPPED", "DELIVERED"})
_SAGA_STATE_OF = {**dict.fromkeys(SOLD, "Completed"), "CANCELLED": "Compensated"}


@dataclass
class Baseline:
    stock: dict[str, int] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class OrderFacts:
    order: dict[str, Any]
    reservation: dict[str, Any] | None
    payments: list[dict[str, Any]]
    saga: dict[str, Any] | None = None  # the orchestrator's, for an orchestrated order


@dataclass
class CheckReport:
    orders: int
    confirmed: int
    cancelled: int
    unfinished: int
    compensations: int
    invariants: dict[str, bool]
    violations: list[str]
    order_documents: list[dict[str, Any]] = field(default_factory=list)
    # Per saga style: {"orders", "confirmed", "cancelled"}.
    by_style: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.invariants.values())

    def merge(self, invariants: dict[str, bool], violations: list[str]) -> None:
        self.invariants.update(invariants)
        self.violations += violations


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
            saga = None
            if order.json().get("saga") == "orchestration" and "orchestrator" in services:
                found = await client.get(f"{services['orchestrator']}/sagas/{order_id}")
                saga = found.json() if found.status_code == 200 else None
            return OrderFacts(
                order.json(),
                reservation.json() if reservation.status_code == 200 else None,
                payments.raise_for_status().json(),
                saga,
            )

    return list(await asyncio.gather(*(facts(i) for i in order_ids)))


class _Findings:
    """Each invariant holds until a violation is recorded against it."""

    def __init__(self) -> None:
        self.invariants = dict.fromkeys(INVARIANTS, True)
        self.violations: list[str] = []

    def fail(self, invariant: str, message: str) -> None:
        self.invariants[invariant] = False
        self.violations.append(message)


def confirmed_demand(facts: list[OrderFacts]) -> Counter[str]:
    demand: Counter[str] = Counter()
    for f in facts:
        if f.order["status"] in SOLD:
            for item in f.order["items"]:
                demand[item["sku"]] += item["quantity"]
    return demand


def _check_stock(
    found: _Findings,
    levels: dict[str, dict[str, int]],
    demand: Counter[str],
    baseline: Baseline | None,
) -> None:
    for sku, level in levels.items():
        if level["available"] < 0 or level["reserved"] < 0:
            found.fail("no_oversell", f"{sku}: negative stock {level}")
        initial = baseline.stock.get(sku) if baseline else None
        if initial is not None:
            if demand[sku] > initial:
                found.fail("no_oversell", f"{sku}: {demand[sku]} confirmed > {initial} stocked")
            if level["available"] + level["reserved"] != initial:
                found.fail("stock_conserved", f"{sku}: available+reserved != initial {initial}")
        if level["reserved"] != demand[sku]:
            found.fail(
                "stock_conserved", f"{sku}: reserved {level['reserved']} != confirmed {demand[sku]}"
            )


def _check_order(found: _Findings, f: OrderFacts) -> None:
    oid, status = f.order["order_id"], f.order["status"]
    charges = [p for p in f.payments if p["status"] == "CHARGED"]
    held = f.reservation is not None and f.reservation["status"] == "RESERVED"
    if len(charges) > 1:
        found.fail("no_double_charge", f"{oid}: {len(charges)} charges")
    if status == "PENDING":
        found.fail("every_saga_ended", f"{oid}: still PENDING")
    elif status in SOLD:
        if len(charges) != 1 or parse_money(charges[0]["amount"]) != parse_money(f.order["total"]):
            found.fail("money_conserved", f"{oid}: confirmed but charged {charges}")
        if not held:
            found.fail("stock_conserved", f"{oid}: confirmed without a held reservation")
    elif charges or held:
        found.fail(
            "cancelled_orders_compensated",
            f"{oid}: cancelled but still holds {f.reservation} / {charges}",
        )
    if f.order.get("saga") == "orchestration":
        state = (f.saga or {}).get("state")
        expected = _SAGA_STATE_OF.get(status)
        if f.saga is None or (expected is not None and state != expected):
            found.fail(
                "orchestrated_sagas_agree",
                f"{oid}: order {status}, saga at the orchestrator {state or 'missing'}",
            )


def _check_balances(
    found: _Findings, facts: list[OrderFacts], balances: dict[str, Decimal], baseline: Baseline
) -> None:
    spent: dict[str, Decimal] = {}
    for f in facts:
        if f.order["status"] in SOLD:
            user = f.order["user_id"]
            spent[user] = spent.get(user, Decimal("0")) + parse_money(f.order["total"])
    for user, initial in baseline.balances.items():
        balance = balances[user]
        if balance + spent.get(user, Decimal("0")) != initial:
            found.fail("money_conserved", f"{user}: balance {balance} + spent != initial {initial}")


def evaluate(
    facts: list[OrderFacts],
    levels: dict[str, dict[str, int]],
    balances: dict[str, Decimal],
    baseline: Baseline | None = None,
) -> CheckReport:
    """The invariants over what the services reported; no I/O."""
    found = _Findings()
    _check_stock(found, levels, confirmed_demand(facts), baseline)
    for f in facts:
        _check_order(found, f)
    if baseline is not None:
        _check_balances(found, facts, balances, baseline)
    status = Counter(f.order["status"] for f in facts)
    by_style: dict[str, dict[str, int]] = {}
    for f in facts:
        counts = by_style.setdefault(
            f.order.get("saga", "choreography"), {"orders": 0, "confirmed": 0, "cancelled": 0}
        )
        counts["orders"] += 1
        counts[f.order["status"].lower()] = counts.get(f.order["status"].lower(), 0) + 1
    compensations = sum(
        (f.reservation is not None and f.reservation["status"] == "RELEASED")
        + any(p["status"] == "REFUNDED" for p in f.payments)
        for f in facts
    )
    return CheckReport(
        orders=len(facts),
        confirmed=sum(status[s] for s in SOLD),
        cancelled=status["CANCELLED"],
        unfinished=status["PENDING"],
        compensations=compensations,
        invariants=found.invariants,
        violations=found.violations,
        order_documents=[f.order for f in facts],
        by_style=by_style,
    )


async def check(
    client: httpx.AsyncClient,
    services: dict[str, str],
    order_ids: list[str] | None = None,
    baseline: Baseline | None = None,
) -> CheckReport:
    """Fetch every order's facts, stock levels and balances, then evaluate the invariants."""
    if order_ids is None:
        order_ids = await list_order_ids(client, services["order"])
    facts = await gather_facts(client, services, order_ids)
    skus = set(baseline.stock if baseline else ()) | {
        item["sku"] for f in facts for item in f.order["items"]
    }
    levels = {}
    for sku in sorted(skus):
        response = await client.get(f"{services['inventory']}/stock/{sku}")
        if response.status_code == 200:
            levels[sku] = response.json()
    balances = {}
    for user in baseline.balances if baseline else ():
        response = await client.get(f"{services['payment']}/accounts/{user}")
        balances[user] = parse_money(response.raise_for_status().json()["balance"])
    return evaluate(facts, levels, balances, baseline)


async def dead_lettered(nats_url: str, credentials: Mapping[str, str] | None = None) -> int:
    """Messages in the dead-letter stream (0 if it does not exist yet). ``credentials``: the
    stack's NATS admin user (``nats_admin`` in the state file), when NATS has users."""
    import nats
    from nats.js.errors import NotFoundError

    from polysaga.events.declaration import DEAD_LETTER_STREAM

    user, password = (credentials["user"], credentials["password"]) if credentials else (None, None)
    nc = await nats.connect(nats_url, user=user, password=password, max_reconnect_attempts=2)
    try:
        info = await nc.jetstream().stream_info(DEAD_LETTER_STREAM)
        return int(info.state.messages)
    except NotFoundError:
        return 0
    finally:
        await nc.close()
