"""Correlation without and with an exporter. On a stack without Jaeger (nothing exports a
span), every event in every stream carries a W3C ``traceparent`` whose sampled flag says
"not sampled", one saga's events share one trace id, and the gateway's calls carry it on to
the services. On the stack with Jaeger, one saga's JSON log lines, from every service it
touched, carry the trace id Jaeger holds for it. Every line every service logged is JSON."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest
from test_tracing import EXPECTED, SAGA_SERVICES, service, traces_of_order

from conftest import Stack, running_stack
from polysaga.events import declaration
from polysaga_tools.delivery_facts import read_stream
from polysaga_tools.stack import APP_SERVICES, nats_admin_login
from polysaga_tools.stack_access import stack_client
from stack_client import StackClient
from waiting import eventually


@pytest.fixture(scope="module")
def plain_stack() -> Iterator[Stack]:
    """A second stack with neither Jaeger nor Prometheus: nothing exports a span. Stopped
    when this module is done, so the rest of the session has one stack again."""
    with running_stack("polysaga-e2e-plain-") as running:
        yield running


TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def log_lines(stack: Stack) -> list[dict[str, Any]]:
    """Every line of every service's log, parsed: each must be one JSON object."""
    lines: list[dict[str, Any]] = []
    logs = Path(stack.state["data_dir"]) / "logs"
    for name in APP_SERVICES:
        for number, text in enumerate((logs / f"{name}.log").read_text().splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AssertionError(f"{name}.log:{number} is not JSON: {text[:200]}") from exc
            assert {"time", "level", "service", "logger", "message"} <= set(line), text
            assert line["service"] == name, text
            lines.append(line)
    return lines


async def saga(stack: Stack, http: httpx.AsyncClient, unique: str, balance: str) -> dict[str, Any]:
    """A saga through every service, for a user the user service knows (so that the
    notification service can mail them): 40.00 of stock reserved, then paid or not."""
    c = StackClient(http, stack.state["services"])
    registered = await http.post(
        f"{stack.url('user')}/users", json={"name": "Ada", "email": f"ada-{unique}@example.com"}
    )
    assert registered.status_code == 201, registered.text
    user, sku = registered.json()["user_id"], f"{unique}-corr"
    await c.seed(prices={sku: "40.00"}, stock={sku: 3}, balances={user: balance})
    return await c.wait_ended(await c.place(user, {sku: 1}))


async def saga_that_fails_payment(stack: Stack, http: httpx.AsyncClient, unique: str) -> str:
    """Reserve, payment fails, cancel, release, notify: every service takes part."""
    order = await saga(stack, http, unique, balance="5.00")
    assert order["status"] == "CANCELLED"
    return str(order["order_id"])


def _saga_lines(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    """The lines the saga's own work wrote. Access lines are left out: a request that reads
    the order (``GET /orders/{id}``) names it too, but is a trace of its own, the reader's."""
    return [
        line
        for line in log_lines(stack)
        if line.get("order_id") == order_id and line["logger"] != "polysaga.access"
    ]


async def _lines_from_every_saga_service(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        lines = _saga_lines(stack, order_id)
        return lines if {line["service"] for line in lines} >= SAGA_SERVICES else None

    try:
        found: list[dict[str, Any]] = await eventually(probe)
    except AssertionError as exc:
        seen = sorted({line["service"] for line in _saga_lines(stack, order_id)})
        raise AssertionError(f"log lines of order {order_id} only from {seen}") from exc
    return found


async def _events_by_order(stack: Stack) -> list[tuple[dict[str, str], dict[str, Any]]]:
    nc = await nats.connect(stack.state["nats"], **nats_admin_login(stack.state))
    try:
        js = nc.jetstream()
        events = []
        for context in declaration.CONTEXTS:
            for msg in await read_stream(js, context.stream, context.subjects):
                events.append((dict(msg.headers or {}), msgspec.json.decode(msg.data)))
        return events
    finally:
        await nc.close()


async def test_without_an_exporter_every_event_carries_an_unsampled_traceparent(
    plain_stack: Stack, unique: str
) -> None:
    stack = plain_stack
    assert stack.state["jaeger"] is None
    async with stack_client(stack.state, timeout=10) as http:
        order_ids = [await saga_that_fails_payment(stack, http, f"{unique}-{i}") for i in range(2)]
        confirmed = await saga(stack, http, f"{unique}-rich", balance="50.00")
        assert confirmed["status"] == "CONFIRMED"
        order_ids.append(confirmed["order_id"])
        for order_id in order_ids:  # the last event of each saga: its notification
            await eventually(
                lambda o=order_id: _notified(http, stack, o)  # type: ignore[misc]
            )
        # The gateway's calls carry the caller's context on to the services it asks.
        gateway = await http.get(f"{stack.url('gateway')}/orders/{order_ids[0]}/details")
        assert gateway.status_code == 200

    events = await _events_by_order(stack)
    assert len(events) >= 20
    traces: dict[str, set[str]] = defaultdict(set)
    for headers, body in events:
        match = TRACEPARENT.match(headers.get("traceparent", ""))
        assert match, f"{headers.get('ce-type')} has no valid traceparent: {headers}"
        trace_id, span_id, flags = match.groups()
        assert trace_id != "0" * 32 and span_id != "0" * 16
        assert int(flags, 16) & 1 == 0, "nothing is recorded, and the flag says so"
        if isinstance(body.get("order_id"), str):
            traces[body["order_id"]].add(trace_id)
    for order_id in order_ids:
        assert len(traces[order_id]) == 1, (order_id, traces[order_id])  # one saga, one trace

    # Logs join that trace without any exporter: one saga's lines carry its events' trace id.
    lines = await _lines_from_every_saga_service(stack, order_ids[0])
    assert {line["trace_id"] for line in lines} == traces[order_ids[0]]
    assert not any(line["trace_sampled"] for line in lines)
    # The gateway's access line and the order service's line for the call it made share it.
    access = [
        line
        for line in log_lines(stack)
        if line["logger"] == "polysaga.access" and line["service"] in ("gateway", "order")
    ]
    by_service = {
        line["service"]: line["trace_id"]
        for line in access
        if "details" in line["url.path"] or line["service"] == "order"
    }
    assert "gateway" in by_service
    gateway_trace = next(
        line["trace_id"]
        for line in access
        if line["service"] == "gateway" and line["url.path"].endswith("/details")
    )
    order_calls = [
        line
        for line in access
        if line["service"] == "order"
        and line["url.path"] == f"/orders/{order_ids[0]}"
        and line["trace_id"] == gateway_trace
    ]
    assert order_calls, "the gateway's call to order did not carry its traceparent"


async def _notified(http: httpx.AsyncClient, stack: Stack, order_id: str) -> bool:
    response = await http.get(
        f"{stack.url('notification')}/notifications", params={"order_id": order_id}
    )
    return response.status_code == 200 and bool(response.json())


async def test_one_saga_s_log_lines_carry_the_trace_id_jaeger_holds(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    order_id = await saga_that_fails_payment(stack, http, unique)
    jaeger = stack.state["jaeger"]

    async def complete_trace() -> list[dict[str, Any]] | None:
        traces = await traces_of_order(http, jaeger["api"], order_id)
        seen = {(service(t, s), s["operationName"]) for t in traces for s in t["spans"]}
        return traces if seen >= EXPECTED else None

    (trace,) = await eventually(complete_trace, timeout_s=90)
    lines = await _lines_from_every_saga_service(stack, order_id)
    trace_ids = {line["trace_id"].lstrip("0") for line in lines}
    assert trace_ids == {trace["traceID"].lstrip("0")}, trace_ids
    span_ids = {s["spanID"].lstrip("0") for s in trace["spans"]}
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"]), line
        assert line["trace_sampled"] is True
        # Each line names a span of the saga's trace that Jaeger holds.
        assert line["span_id"].lstrip("0") in span_ids, line
    handled = {(line["service"], line.get("event_type")) for line in lines if line.get("event_id")}
    assert ("inventory", "OrderPlaced") in handled and ("payment", "StockReserved") in handled
    assert ("notification", "OrderCancelled") in handled


def test_every_line_every_service_logs_is_json(stack: Stack) -> None:
    lines = log_lines(stack)  # refuses a line that is not a JSON object
    assert {line["service"] for line in lines} == set(APP_SERVICES)
    assert {line["level"] for line in lines} <= {"debug", "info", "warning", "error", "critical"}
