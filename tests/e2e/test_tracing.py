"""Traces in a real Jaeger (the e2e stack runs `polysaga up --with-jaeger`): a saga whose
payment fails, compensation and notification included, is one trace, found by its
``app.order.id``, whose links cross NATS from each publish span to the process span of
another service."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import httpx

from conftest import Stack
from stack_client import StackClient

SAGA_SERVICES = {"order", "inventory", "payment", "order-view", "notification"}
# The spans that must have arrived before the trace is complete: the failure path, its
# compensation (inventory releases the cancelled order's stock) and the notification.
EXPECTED = {
    ("order", "publish orders.events.OrderPlaced"),
    ("inventory", "process orders.events.OrderPlaced"),
    ("payment", "process inventory.events.StockReserved"),
    ("order", "process payments.events.PaymentFailed"),
    ("inventory", "process orders.events.OrderCancelled"),
    ("inventory", "publish inventory.events.StockReleased"),
    ("order-view", "process inventory.events.StockReleased"),
    ("payment", "process orders.events.OrderCancelled"),
    ("notification", "process orders.events.OrderCancelled"),
}


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def service(trace: dict[str, Any], span: dict[str, Any]) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


def parent_id(span: dict[str, Any]) -> str | None:
    for reference in span.get("references", []):
        if reference["refType"] == "CHILD_OF":
            return str(reference["spanID"])
    return None


async def traces_of_order(http: httpx.AsyncClient, api: str, order_id: str) -> list[dict[str, Any]]:
    response = await http.get(
        f"{api}/traces",
        params={
            "service": "order",
            "tags": json.dumps({"app.order.id": order_id}),
            "lookback": "1h",
            "limit": "20",
        },
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"] or []
    return found


async def test_a_failed_payment_saga_is_one_trace_across_every_service(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    jaeger = stack.state["jaeger"]
    assert jaeger, "the e2e stack runs with --with-jaeger"
    c = StackClient(http, stack.state["services"])
    registered = await http.post(
        f"{stack.url('user')}/users",
        json={"name": "Ada Lovelace", "email": f"ada-{unique}@example.com"},
    )
    assert registered.status_code == 201, registered.text
    user, sku = registered.json()["user_id"], f"{unique}-trace"
    await c.seed(prices={sku: "40.00"}, stock={sku: 3}, balances={user: "5.00"})
    order = await c.wait_ended(await c.place(user, {sku: 1}))
    order_id = order["order_id"]
    assert order["cancel_reason"] == "payment_failed: insufficient_funds"

    # Spans arrive in batches from eight processes: ask until the saga's trace is complete.
    traces: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while True:
        traces = await traces_of_order(http, jaeger["api"], order_id)
        seen = {(service(t, s), s["operationName"]) for t in traces for s in t["spans"]}
        if seen >= EXPECTED:
            break
        assert time.monotonic() < deadline, f"missing from Jaeger: {sorted(EXPECTED - seen)}"
        await asyncio.sleep(1)

    assert len(traces) == 1, [t["traceID"] for t in traces]
    (trace,) = traces
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert {service(trace, s) for s in spans.values()} >= SAGA_SERVICES

    # Links cross NATS: every process span is the child of the publish span of its message,
    # and that publish span belongs to another service.
    processes = [s for s in spans.values() if s["operationName"].startswith("process ")]
    assert len(processes) >= 8
    for process in processes:
        assert tags(process)["span.kind"] == "consumer"
        publish = spans.get(parent_id(process) or "")
        assert publish is not None, f"{process['operationName']} has no parent in the trace"
        subject = process["operationName"].removeprefix("process ")
        assert publish["operationName"] == f"publish {subject}"
        assert tags(publish)["span.kind"] == "producer"
        assert tags(publish)["messaging.system"] == "nats"
        assert service(trace, publish) != service(trace, process)

    # The compensation continues from the cancellation: inventory's release is published
    # from inside its processing of OrderCancelled, which order published after PaymentFailed.
    (release,) = [
        s for s in spans.values() if s["operationName"] == "publish inventory.events.StockReleased"
    ]
    handling = spans[parent_id(release) or ""]
    assert handling["operationName"] == "process orders.events.OrderCancelled"
    assert service(trace, handling) == "inventory"

    # The order id is an attribute of every span of the saga, database spans included;
    # only the placing request's connection is taken before the order id exists.
    (request,) = [s for s in spans.values() if s["operationName"] == "POST /orders"]
    for span in spans.values():
        if parent_id(span) == request["spanID"] and span["operationName"] == "connect":
            continue
        assert tags(span).get("app.order.id") == order_id, span["operationName"]
    assert any(
        "postgresql" in (tags(s).get("db.system"), tags(s).get("db.system.name"))
        for s in spans.values()
    )
    assert any(
        "mongodb" in (tags(s).get("db.system"), tags(s).get("db.system.name"))
        for s in spans.values()
    )


# An orchestrated saga whose charge fails: the orchestrator's commands, each participant's
# handling and reply, the compensation it sends, and the order's cancellation.
ORCHESTRATED = {
    ("order", "publish orders.events.OrderPlaced"),
    ("orchestrator", "process orders.events.OrderPlaced"),
    ("orchestrator", "publish sagas.commands.ReserveStock"),
    ("inventory", "process sagas.commands.ReserveStock"),
    ("inventory", "publish inventory.replies.ReserveStockReply"),
    ("orchestrator", "process inventory.replies.ReserveStockReply"),
    ("payment", "process sagas.commands.ChargePayment"),
    ("orchestrator", "process payments.replies.ChargePaymentReply"),
    ("inventory", "process sagas.commands.ReleaseStock"),
    ("orchestrator", "process inventory.replies.ReleaseStockReply"),
    ("orchestrator", "publish sagas.events.SagaCompensated"),
    ("order", "process sagas.events.SagaCompensated"),
    ("notification", "process orders.events.OrderCancelled"),
}


async def test_an_orchestrated_saga_is_one_trace_through_the_orchestrator(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    jaeger = stack.state["jaeger"]
    c = StackClient(http, stack.state["services"])
    registered = await http.post(
        f"{stack.url('user')}/users",
        json={"name": "Grace Hopper", "email": f"grace-{unique}@example.com"},
    )
    assert registered.status_code == 201, registered.text
    user, sku = registered.json()["user_id"], f"{unique}-otrace"
    await c.seed(prices={sku: "40.00"}, stock={sku: 3}, balances={user: "5.00"})
    order = await c.wait_ended(await c.place(user, {sku: 1}, saga="orchestration"))
    order_id = order["order_id"]
    assert order["cancel_reason"] == "payment_failed: insufficient_funds"

    traces: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while True:
        traces = await traces_of_order(http, jaeger["api"], order_id)
        seen = {(service(t, s), s["operationName"]) for t in traces for s in t["spans"]}
        if seen >= ORCHESTRATED:
            break
        assert time.monotonic() < deadline, f"missing from Jaeger: {sorted(ORCHESTRATED - seen)}"
        await asyncio.sleep(1)

    assert len(traces) == 1, [t["traceID"] for t in traces]
    (trace,) = traces
    spans = {s["spanID"]: s for s in trace["spans"]}
    # Each command is published from inside the handling of the message that led to it.
    for command, cause in (
        ("sagas.commands.ReserveStock", "orders.events.OrderPlaced"),
        ("sagas.commands.ChargePayment", "inventory.replies.ReserveStockReply"),
        ("sagas.commands.ReleaseStock", "payments.replies.ChargePaymentReply"),
    ):
        (publish,) = [s for s in spans.values() if s["operationName"] == f"publish {command}"]
        handling = spans[parent_id(publish) or ""]
        assert handling["operationName"] == f"process {cause}"
        assert service(trace, handling) == "orchestrator"
    for span in spans.values():
        if service(trace, span) == "orchestrator":
            assert tags(span).get("app.order.id") == order_id, span["operationName"]


async def test_the_gateways_calls_continue_the_callers_trace(
    stack: Stack, http: httpx.AsyncClient, unique: str
) -> None:
    """HTTP server and httpx client spans: a caller's traceparent reaches the gateway, whose
    calls to the services it composes are children of its request."""
    jaeger = stack.state["jaeger"]
    c = StackClient(http, stack.state["services"])
    sku, user = f"{unique}-compose", f"{unique}-zoe"
    await c.seed(prices={sku: "2.00"}, stock={sku: 3}, balances={user: "10.00"})
    order_id = await c.place(user, {sku: 1})
    trace_id = secrets.token_hex(16)
    response = await http.get(
        f"{stack.url('gateway')}/orders/{order_id}/details",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 200, response.text

    wanted = {("gateway", "server"), ("gateway", "client"), ("order", "server")}
    deadline = time.monotonic() + 60
    while True:
        found = await http.get(f"{jaeger['api']}/traces/{trace_id}")
        traces = found.json()["data"] or [] if found.status_code == 200 else []
        spans = [(t, s) for t in traces for s in t["spans"]]
        if wanted <= {(service(t, s), tags(s)["span.kind"]) for t, s in spans}:
            break
        assert time.monotonic() < deadline, f"trace {trace_id} incomplete in Jaeger"
        await asyncio.sleep(1)
    by_id = {s["spanID"]: (t, s) for t, s in spans}
    (order_request,) = [
        s for t, s in spans if service(t, s) == "order" and tags(s)["span.kind"] == "server"
    ]
    parent_trace, client_call = by_id[parent_id(order_request) or ""]
    assert service(parent_trace, client_call) == "gateway"
    assert tags(client_call)["span.kind"] == "client"
    assert order_request["operationName"] == "GET /orders/{order_id}"  # the route, not the path
