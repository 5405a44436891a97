"""The terminal view of ``polysaga up``: processes, sagas, compensations, outbox backlog,
read from the services' own /stats and /metrics endpoints."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.live import Live
from rich.table import Table

from polysaga_tools.stack import LocalStack


async def _metric_sum(client: httpx.AsyncClient, url: str, name: str) -> float:
    try:
        text = (await client.get(f"{url}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


async def snapshot(stack: LocalStack, client: httpx.AsyncClient) -> dict[str, float]:
    figures: dict[str, float] = {}
    try:
        stats = (await client.get(f"{stack.service_url('order')}/stats")).json()
        figures.update({k.lower(): float(v) for k, v in stats.items()})
    except (httpx.HTTPError, ValueError):
        pass
    urls = [stack.service_url(s) for s in stack.services]
    compensations = await asyncio.gather(
        *(_metric_sum(client, u, "polysaga_compensations_total") for u in urls)
    )
    backlog = await asyncio.gather(
        *(_metric_sum(client, u, "polysaga_outbox_backlog") for u in urls)
    )
    figures["compensations (since start)"] = sum(compensations)
    figures["outbox backlog"] = sum(backlog)
    return figures


def render(stack: LocalStack, figures: dict[str, float]) -> Group:
    processes = Table(title="polysaga up", expand=False)
    for column in ("process", "pid", "state", "restarts", "address"):
        processes.add_column(column)
    state = stack.state()
    for name, pid in state["processes"].items():
        proc = stack.process(name)
        address = {
            **state["services"],
            "nats": state["nats"],
            "postgres": f"127.0.0.1:{state['postgres'].get('port', '')}",
        }.get(name, "")
        processes.add_row(name, str(pid or "—"), proc.state, str(proc.restarts), address)
    sagas = Table(title="sagas")
    sagas.add_column("figure")
    sagas.add_column("value", justify="right")
    for key in (
        "pending",
        "confirmed",
        "cancelled",
        "compensations (since start)",
        "outbox backlog",
    ):
        sagas.add_row(key, f"{figures.get(key, 0):.0f}")
    return Group(processes, sagas)


async def run_live_view(stack: LocalStack, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        with Live(render(stack, {}), refresh_per_second=2) as live:
            while not stop.is_set():
                live.update(render(stack, await snapshot(stack, client)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)
