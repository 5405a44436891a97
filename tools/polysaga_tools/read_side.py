"""Read-side invariants, checked from the outside: the order-view read model agrees with
the write side, the gateway's composed document agrees with the read model, and a rebuild
from event history reproduces the live view."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from polysaga.money import parse_money
from polysaga_tools.histograms import bucket_counts, quantile

LAG_HISTOGRAM = "polysaga_consistency_lag_seconds"

READ_SIDE_INVARIANTS = (
    "read_model_converged",
    "composition_matches_read_model",
    "rebuild_reproduces_read_model",
)


@dataclass
class ReadSideReport:
    invariants: dict[str, bool]
    violations: list[str] = field(default_factory=list)


def summary_mismatches(
    order: dict[str, Any],
    summary: dict[str, Any] | None,
    user: dict[str, Any] | None,
    product_names: dict[str, str],
) -> list[str]:
    """How a summary differs from the write side (order, user, catalog); empty if it agrees."""
    oid = order["order_id"]
    if summary is None:
        return [f"{oid}: no summary"]
    problems = []
    if summary.get("status") != order["status"]:
        problems.append(f"{oid}: status {summary.get('status')} != {order['status']}")
    if parse_money(str(summary.get("total", "-1") or "0")) != parse_money(order["total"]):
        problems.append(f"{oid}: total {summary.get('total')} != {order['total']}")
    if summary.get("item_count") != sum(i["quantity"] for i in order["items"]):
        problems.append(f"{oid}: item_count {summary.get('item_count')}")
    if user is not None:
        seen = summary.get("user") or {}
        if (seen.get("name"), seen.get("email")) != (user["name"], user["email"]):
            problems.append(f"{oid}: user {seen} != {user['name']}/{user['email']}")
    for item in summary.get("items", []):
        expected = product_names.get(item["sku"])
        if expected is not None and item.get("name") != expected:
            problems.append(f"{oid}: product {item['sku']} named {item.get('name')!r}")
    return problems


# How long an incomplete composed document is asked for again (the breaker opens for 5 s).
COMPOSITION_PATIENCE_S = 30.0


def details_mismatches(summary: dict[str, Any], details: dict[str, Any]) -> list[str]:
    """How the gateway's composed document differs from the read model. A part the read
    model has (user, product names) must be in the composition and agree with it."""
    oid = summary["order_id"]
    problems = []
    order = details.get("order") or {}
    if (order.get("status"), order.get("total")) != (summary["status"], summary["total"]):
        problems.append(f"{oid}: gateway order {order.get('status')}/{order.get('total')}")
    summary_user = summary.get("user")
    if summary_user and (details.get("user") or {}).get("name") != summary_user.get("name"):
        problems.append(f"{oid}: gateway user {details.get('user')} != {summary_user}")
    products = details.get("products") or {}
    for item in summary.get("items", []):
        if item.get("name") and (products.get(item["sku"]) or {}).get("name") != item["name"]:
            problems.append(f"{oid}: gateway product {item['sku']} != {item['name']!r}")
    return problems


async def _get(client: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any] | None:
    response = await client.get(url, params=params or None)
    return response.json() if response.status_code == 200 else None


async def check_read_side(
    client: httpx.AsyncClient,
    services: dict[str, str],
    orders: list[dict[str, Any]],
    *,
    settle_timeout_s: float | None = None,
    rebuild: bool = True,
) -> ReadSideReport:
    # The view may lag behind a burst of orders: give it time in proportion to the work.
    settle_timeout_s = settle_timeout_s or max(30.0, 0.5 * len(orders))
    report = ReadSideReport(dict.fromkeys(READ_SIDE_INVARIANTS, True))
    users: dict[str, dict[str, Any] | None] = {}
    for user_id in {o["user_id"] for o in orders}:
        users[user_id] = await _get(client, f"{services['user']}/users/{user_id}")
    names: dict[str, str] = {}
    for sku in {i["sku"] for o in orders for i in o["items"]}:
        product = await _get(client, f"{services['catalog']}/products/{sku}")
        if product is not None:
            names[sku] = product["name"]

    summaries: dict[str, dict[str, Any] | None] = {}
    pending = {o["order_id"]: o for o in orders}
    deadline = time.monotonic() + settle_timeout_s
    last: dict[str, list[str]] = {}
    while pending and time.monotonic() < deadline:
        for oid, order in list(pending.items()):
            summary = await _get(client, f"{services['order-view']}/orders/{oid}/summary")
            problems = summary_mismatches(order, summary, users[order["user_id"]], names)
            summaries[oid] = summary
            if problems:
                last[oid] = problems
            else:
                pending.pop(oid)
                last.pop(oid, None)
        if pending:
            await asyncio.sleep(1.0)  # a pass reads every pending summary: do not hammer
    if pending:
        report.invariants["read_model_converged"] = False
        report.violations += [p for problems in last.values() for p in problems][:50]

    limit = asyncio.Semaphore(16)

    async def compare(summary: dict[str, Any]) -> list[str]:
        # A part the gateway could not fetch in time is marked missing, by design; on a
        # busy machine that is transient, so an incomplete document is asked for again, for
        # longer than the gateway's circuit breaker keeps a slow upstream's circuit open.
        # Both sides are eventually consistent (the view's copy of a name, the gateway's live
        # read), so a mismatch is asked again, the summary too, until the same patience ends.
        order_id = summary["order_id"]
        url = f"{services['gateway']}/orders/{order_id}/details"
        deadline = time.monotonic() + COMPOSITION_PATIENCE_S
        while True:
            async with limit:
                details = await _get(client, url) or {}
            problems = details_mismatches(summary, details)
            if not problems or time.monotonic() > deadline:
                return problems
            await asyncio.sleep(1.0)
            async with limit:
                fresh = await _get(client, f"{services['order-view']}/orders/{order_id}/summary")
            summary = fresh or summary

    results = await asyncio.gather(*(compare(s) for s in summaries.values() if s is not None))
    problems = [p for r in results for p in r]
    if problems:
        report.invariants["composition_matches_read_model"] = False
        report.violations += problems[:50]

    if rebuild:
        ok, detail = await rebuild_and_compare(client, services["order-view"])
        if not ok:
            report.invariants["rebuild_reproduces_read_model"] = False
            report.violations.append(detail)
    return report


async def _digest(
    client: httpx.AsyncClient, view_url: str, generation: int | None = None
) -> dict[str, Any]:
    params = {"generation": generation} if generation is not None else None
    response = await client.get(f"{view_url}/admin/digest", params=params)
    return response.raise_for_status().json()  # type: ignore[no-any-return]


async def _quiet_digest(
    client: httpx.AsyncClient, view_url: str, timeout_s: float = 60
) -> dict[str, Any]:
    """The live view's digest once it has stopped changing (two reads a second apart)."""
    deadline = time.monotonic() + timeout_s
    previous = await _digest(client, view_url)
    while True:
        await asyncio.sleep(1.0)
        current = await _digest(client, view_url)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


async def rebuild_and_compare(
    client: httpx.AsyncClient, view_url: str, attempts: int = 3
) -> tuple[bool, str]:
    """Rebuild the view from event history and compare the new generation's digest with the
    live one it replaced. Events that reach the view while it is rebuilt make the two differ
    for a good reason; the old generation's digest tells that case apart (it changed too),
    and the comparison is tried again."""
    for _ in range(attempts):
        before = await _quiet_digest(client, view_url)
        rebuilt = (
            (await client.post(f"{view_url}/admin/rebuild", timeout=600)).raise_for_status().json()
        )
        after = await _digest(client, view_url, rebuilt["generation"])
        if before["digest"] == after["digest"]:
            return True, (
                f"generation {rebuilt['generation']}: {after['count']} documents, same digest"
            )
        replaced = await _digest(client, view_url, before["generation"])
        if replaced["digest"] == before["digest"]:  # nothing arrived meanwhile: it differs
            return False, (
                f"rebuilt view differs: {before['count']} live vs {after['count']} rebuilt"
            )
    return False, f"the view kept changing during {attempts} rebuilds; compare on a quiet stack"


async def lag_quantiles(client: httpx.AsyncClient, view_url: str) -> dict[str, float | None]:
    """p50/p99 of the order-view consistency lag (ms), from its exported histogram."""
    try:
        text = (await client.get(f"{view_url}/metrics")).text
    except httpx.HTTPError:
        return {"p50": None, "p99": None}
    buckets = bucket_counts(text, LAG_HISTOGRAM, {"read_model": "order-view"})
    result: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        seconds = quantile(q, buckets)
        result[name] = None if seconds is None else round(seconds * 1000, 1)
    return result
