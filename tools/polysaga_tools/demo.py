"""``polysaga demo``: seed stock, prices and accounts, place N orders concurrently, wait for
every saga to end, and check the invariants through the services' APIs."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from polysaga.money import format_money
from polysaga_tools.invariants import Baseline, CheckReport, check, dead_lettered
from polysaga_tools.plot import RunSample
from polysaga_tools.quiescence import wait_quiescent
from polysaga_tools.read_side import check_read_side, lag_quantiles
from polysaga_tools.run_sampler import RunSampler
from polysaga_tools.stack_access import stack_client


@dataclass(frozen=True)
class DemoPlan:
    orders: int
    concurrency: int = 16
    payment_failure_rate: float = 0.0
    scarce_stock: bool = False
    seed: int = 1
    skus: int = 5


@dataclass
class DemoResult:
    report: CheckReport
    dead_lettered: int
    placed: int
    elapsed_s: float
    consistency_lag_ms: dict[str, float | None]
    samples: list[RunSample] = field(default_factory=list)  # once a second, if asked for

    def as_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "orders": r.orders,
            "confirmed": r.confirmed,
            "cancelled": r.cancelled,
            "unfinished": r.unfinished,
            "compensations": r.compensations,
            "dead_lettered": self.dead_lettered,
            "invariants": r.invariants,
            "sagas_per_s": round(r.orders / self.elapsed_s, 1) if self.elapsed_s else None,
            "consistency_lag_ms": self.consistency_lag_ms,
            "violations": r.violations[:20],
        }


@dataclass
class Workload:
    """Orders to place (bodies for POST /orders) and the stock and balances seeded for them."""

    orders: list[dict[str, Any]]
    baseline: Baseline


async def prepare_workload(
    client: httpx.AsyncClient, services: dict[str, str], plan: DemoPlan
) -> Workload:
    """Register users, draw the order mix from the plan's seed, and seed products, stock and
    accounts for it: scarce stock holds 60 % of the demand, poor accounts cannot pay."""
    rng = random.Random(plan.seed)
    run = uuid.uuid4().hex[:8]  # demo runs on one stack never share SKUs or users
    prices = {
        f"demo-{run}-sku-{i}": Decimal(rng.randint(100, 5000)) / 100 for i in range(plan.skus)
    }
    rich_names = [f"rich-{i}" for i in range(max(2, plan.orders // 20))]
    poor_names = [f"poor-{i}" for i in range(max(1, plan.orders // 50))]
    users = await _register_users(client, services["user"], run, rich_names + poor_names)
    rich = [users[n] for n in rich_names]
    poor = [users[n] for n in poor_names]
    orders: list[dict[str, Any]] = []
    for _ in range(plan.orders):
        user = rng.choice(poor if rng.random() < plan.payment_failure_rate else rich)
        lines = rng.sample(sorted(prices), k=rng.randint(1, min(3, len(prices))))
        items = [{"sku": s, "quantity": rng.randint(1, 3)} for s in lines]
        orders.append({"user_id": user, "items": items})
    demand = {
        sku: sum(i["quantity"] for o in orders for i in o["items"] if i["sku"] == sku)
        for sku in prices
    }
    baseline = Baseline(
        stock={
            sku: (demand[sku] * 6 // 10 if plan.scarce_stock else demand[sku] + 10)
            for sku in prices
        },
        balances={
            **{u: Decimal("1000000.00") for u in rich},
            **{u: Decimal("1.00") for u in poor},
        },
    )
    await _seed(client, services, prices, baseline)
    return Workload(orders, baseline)


async def run_demo(
    state: dict[str, Any], plan: DemoPlan, settle_timeout_s: float = 120, *, sample: bool = False
) -> DemoResult:
    """With ``sample``, the result holds a RunSample per second from placing the first
    order until every saga ended (for ``--plot``)."""
    services: dict[str, str] = state["services"]
    limits = httpx.Limits(max_connections=plan.concurrency * 2)
    async with stack_client(state, timeout=10, limits=limits) as client:
        workload = await prepare_workload(client, services, plan)
        baseline = workload.baseline
        sampler = RunSampler(client, services) if sample else None
        started = time.monotonic()
        async with sampler or contextlib.nullcontext():
            order_ids = await _place_all(
                client, services["order"], workload.orders, plan.concurrency
            )
            await wait_settled(client, services["order"], order_ids, settle_timeout_s)
        elapsed = time.monotonic() - started
        # Compensations and the read side follow a saga's end: check once they have landed.
        await wait_quiescent(client, state, settle_timeout_s)
        report = await check(client, services, order_ids, baseline)
        read_side = await check_read_side(client, services, report.order_documents)
        report.merge(read_side.invariants, read_side.violations)
        lag = await lag_quantiles(client, services["order-view"])
    samples = sampler.samples if sampler else []
    dead = await dead_lettered(state["nats"], state.get("nats_admin"))
    return DemoResult(report, dead, len(order_ids), elapsed, lag, samples)


async def _register_users(
    client: httpx.AsyncClient, user_url: str, run: str, names: list[str]
) -> dict[str, str]:
    """Users come from the user service, which owns them; returns name -> user_id."""

    async def register(name: str) -> tuple[str, str]:
        body = {"name": f"Demo {name.title()}", "email": f"{name}@demo-{run}.example.com"}
        response = await client.post(f"{user_url}/users", json=body)
        response.raise_for_status()
        return name, str(response.json()["user_id"])

    return dict(await asyncio.gather(*(register(n) for n in names)))


async def _seed(
    client: httpx.AsyncClient,
    services: dict[str, str],
    prices: dict[str, Decimal],
    baseline: Baseline,
) -> None:
    """Products through the catalog (the order service learns their prices from its events),
    stock at inventory, accounts at payment; then wait until order knows every price."""
    requests = [
        *(
            client.post(
                f"{services['catalog']}/products",
                json={"sku": s, "name": f"Product {s[-5:]}", "price": format_money(p)},
            )
            for s, p in prices.items()
        ),
        *(
            client.put(f"{services['inventory']}/stock/{s}", json={"available": n})
            for s, n in baseline.stock.items()
        ),
        *(
            client.put(f"{services['payment']}/accounts/{u}", json={"balance": format_money(b)})
            for u, b in baseline.balances.items()
        ),
    ]
    for response in await asyncio.gather(*requests):
        response.raise_for_status()
    deadline = time.monotonic() + 30
    unknown = set(prices)
    while unknown:
        for sku in list(unknown):
            response = await client.get(f"{services['order']}/prices/{sku}")
            if response.status_code == 200 and response.json()["price"] == format_money(
                prices[sku]
            ):
                unknown.discard(sku)
        if unknown:
            if time.monotonic() > deadline:
                raise TimeoutError(f"order service never learned the prices of {sorted(unknown)}")
            await asyncio.sleep(0.1)


async def _place_all(
    client: httpx.AsyncClient, order_url: str, orders: list[dict[str, Any]], concurrency: int
) -> list[str]:
    limit = asyncio.Semaphore(concurrency)

    async def place(body: dict[str, Any]) -> str:
        key = str(uuid.uuid4())  # a retry after a dropped connection creates nothing new
        async with limit:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_attempt(8),
                wait=wait_exponential(multiplier=0.2, max=3),
                reraise=True,
            ):
                with attempt:
                    response = await client.post(
                        f"{order_url}/orders", json=body, headers={"Idempotency-Key": key}
                    )
                    response.raise_for_status()
            return str(response.json()["order_id"])

    return list(await asyncio.gather(*(place(o) for o in orders)))


async def wait_settled(
    client: httpx.AsyncClient, order_url: str, order_ids: list[str], timeout_s: float
) -> None:
    pending = set(order_ids)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        statuses = await asyncio.gather(
            *(client.get(f"{order_url}/orders/{i}") for i in sorted(pending)[:200]),
            return_exceptions=True,
        )
        for response in statuses:
            if isinstance(response, httpx.Response) and response.status_code == 200:
                body = response.json()
                if body["status"] != "PENDING":
                    pending.discard(body["order_id"])
        if pending:
            await asyncio.sleep(0.25)
