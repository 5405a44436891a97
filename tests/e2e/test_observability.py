"""Metrics against a real Prometheus scraping the stack `polysaga up --with-prometheus`
runs: every alert rule's expression evaluates, and the saga's metrics arrive."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import yaml

from conftest import Stack
from prometheus_api import query
from stack_client import StackClient

RULES = Path(__file__).resolve().parents[2] / "observability" / "prometheus" / "polysaga-rules.yml"


def rule_expressions() -> dict[str, str]:
    document = yaml.safe_load(RULES.read_text())
    return {
        rule["alert"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


async def test_prometheus_scrapes_saga_metrics_and_every_rule_evaluates(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    prometheus = stack.state["prometheus"]
    assert prometheus, "the e2e stack runs with --with-prometheus"
    c = StackClient(http, stack.state["services"])
    sku, user = f"{unique}-obs", f"{unique}-ivy"
    await c.seed(prices={sku: "3.00"}, stock={sku: 5}, balances={user: "50.00"})
    order = await c.wait_ended(await c.place(user, {sku: 1}))
    assert order["status"] == "CONFIRMED"

    wanted = {
        'polysaga_http_requests_total{route="/orders", method="POST"}',
        "polysaga_sagas_total",
        "polysaga_consistency_lag_seconds_count",
    }
    missing = set(wanted)
    deadline = time.monotonic() + 20
    while missing:
        for expr in list(missing):
            series = await query(http, prometheus, expr)
            if series and any(float(s["value"][1]) > 0 for s in series):
                missing.discard(expr)
        if missing:
            assert time.monotonic() < deadline, f"no data in Prometheus for {sorted(missing)}"
            await asyncio.sleep(0.5)

    # Gauges the services refresh themselves are scraped too.
    for expr in ("polysaga_sagas_in_flight", "polysaga_consumer_pending_messages"):
        assert await query(http, prometheus, expr), f"no series for {expr}"

    expressions = rule_expressions()
    assert set(expressions) == {
        "SagaStuck",
        "ConsistencyLagHigh",
        "OutboxBacklogGrowing",
        "DeadLettersPresent",
        "ConsumerFallingBehind",
        "EventsContradictWhatServicesKnow",
    }
    for expr in expressions.values():
        await query(http, prometheus, expr)  # asserts the query succeeded

    # Prometheus loaded the same rules and evaluates them without error.
    rules = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    assert set(loaded) == set(expressions)
    deadline = time.monotonic() + 10
    while any(r.get("health") != "ok" for r in loaded.values()):
        assert time.monotonic() < deadline, {n: r.get("lastError") for n, r in loaded.items()}
        await asyncio.sleep(0.5)
        rules = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
        loaded = {r["name"]: r for g in rules for r in g["rules"]}
