"""Issue 14, from outside, over NATS: forged and poison events published with a service's own
credentials, against the whole stack as ``polysaga up`` runs it.

Forged (well-formed, but false): reservations for orders that were never placed, or that
name another total or user (class 7); a payment for no order (class 7); a reservation
failure after the order was confirmed (class 9); products whose SKU no field name can hold
(class 5). Poison (classes 6 and 8): bytes that are not UTF-8, a 10,000-deep array, wrong
types, missing and unknown fields, a ce-id that is not a UUID, a ce-type off its subject,
times no UTC clock can show.

Afterwards: no money moved but the honest charge; every poison message was dead-lettered
on its first delivery; every consumer is drained and still live (a new order goes through
the whole saga and reaches the view); the CLI's invariant checks hold (``polysaga check``,
which also rebuilds the view); no service answered a 5xx, logged an unhandled error or was
restarted."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client.parser import text_string_to_metric_families

from conftest import Stack
from forged_events import forge
from polysaga.events import declaration
from polysaga.messaging.permissions import inbox_prefix
from stack_client import StackClient
from stack_health import LogWatch, consumers_drained, restarts, server_errors
from waiting import eventually

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def as_service(stack: Stack, service: str) -> AsyncIterator[JetStreamContext]:
    """JetStream, connected with the service's own NATS user (what a compromised or buggy
    producer holds)."""
    login = stack.state["nats_users"][service]
    nc = await nats.connect(
        stack.state["nats"],
        user=login["user"],
        password=login["password"],
        inbox_prefix=inbox_prefix(service),
    )
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def metric(http: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    text = (await http.get(f"{url}/metrics")).raise_for_status().text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def dead_letters(stack: Stack, ce_ids: set[str]) -> dict[str, list[dict[str, str]]]:
    """The dead letters of these messages, by ce-id (headers of each letter)."""
    admin = stack.state["nats_admin"]
    nc = await nats.connect(stack.state["nats"], user=admin["user"], password=admin["password"])
    found: dict[str, list[dict[str, str]]] = {}
    try:
        js = nc.jetstream()
        info = await js.stream_info(declaration.DEAD_LETTER_STREAM)
        if not info.state.messages:
            return found
        sub = await js.pull_subscribe(
            f"{declaration.DEAD_LETTER_PREFIX}.>",
            stream=declaration.DEAD_LETTER_STREAM,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30),
        )
        seen = 0
        while seen < info.state.messages:
            try:
                msgs = await sub.fetch(256, timeout=2)
            except TimeoutError:
                break
            for msg in msgs:
                seen += 1
                await msg.ack()
                headers = dict(msg.headers or {})
                if headers.get("ce-id") in ce_ids:
                    found.setdefault(headers["ce-id"], []).append(headers)
        await sub.unsubscribe()
    finally:
        await nc.close()
    return found


async def quiet(stack: Stack, http: httpx.AsyncClient) -> None:
    """No saga pending and no consumer behind."""

    async def no_pending() -> bool:
        stats = (await http.get(f"{stack.url('order')}/stats")).raise_for_status().json()
        return bool(stats["PENDING"] == 0)

    await eventually(no_pending, timeout_s=90)
    assert await consumers_drained(stack.state, timeout_s=90) == {}


@pytest.fixture
async def honest(stack: Stack, http: httpx.AsyncClient, unique: str) -> dict[str, Any]:
    """A user who placed one order, confirmed and charged, the honest way."""
    s = stack.state["services"]
    email = f"victim-{unique}@example.com"
    registered = await http.post(f"{s['user']}/users", json={"name": "Vic Tim", "email": email})
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["user_id"]
    sku = f"{unique}-cup"
    created = await http.post(
        f"{s['catalog']}/products", json={"sku": sku, "name": "Cup", "price": "4.00"}
    )
    assert created.status_code == 201, created.text
    c = StackClient(http, s)

    async def priced() -> bool:
        return (await http.get(f"{c.order_url}/prices/{sku}")).status_code == 200

    await eventually(priced)
    await c.seed(prices={}, stock={sku: 10}, balances={user_id: "50.00"})
    order = await c.wait_ended(await c.place(user_id, {sku: 2}))
    assert (order["status"], order["total"]) == ("CONFIRMED", "8.00")
    return {"user_id": user_id, "sku": sku, "order": order, "client": c}


def _reserved(order_id: str, **fields: Any) -> bytes:
    body = {
        "order_id": order_id,
        "user_id": "u-1",
        "items": [{"sku": "SKU-1", "quantity": 1}],
        "total": "1.00",
        **fields,
    }
    return json.dumps(body).encode()


def _cancelled(order_id: str, **fields: Any) -> bytes:
    body = {
        "order_id": order_id,
        "user_id": "u-1",
        "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "1.00"}],
        "total": "1.00",
        "reason": "x",
        **fields,
    }
    return json.dumps(body).encode()


def _registered(order_id: str, **fields: Any) -> bytes:
    body = {"user_id": str(uuid.uuid4()), "name": "Eve", "email": "e@x.io", "version": 1}
    return json.dumps({**body, **fields}).encode()


# (event, what is wrong, the body for an order id, header overrides)
POISON: list[tuple[str, str, Any, dict[str, str]]] = [
    ("StockReserved", "not UTF-8", lambda o: b'{"order_id": "\xff\xfe"}', {}),
    ("OrderPlaced", "10,000 deep", lambda o: b"[" * 10_000 + b"]" * 10_000, {}),
    ("StockReserved", "wrong types", lambda o: _reserved(o, items="x", total=5), {}),
    ("PaymentProcessed", "missing fields", lambda o: json.dumps({"order_id": o}).encode(), {}),
    ("OrderCancelled", "unknown field", lambda o: _cancelled(o, extra=1), {}),
    ("StockReserved", "negative total", lambda o: _reserved(o, total="-5.00"), {}),
    ("StockReserved", "overflowing total", lambda o: _reserved(o, total="1" * 40), {}),
    ("StockReserved", "ce-id not a UUID", _reserved, {"ce-id": "not-a-uuid"}),
    (
        "StockReleased",
        "ce-type off its subject",
        _reserved,
        {"ce-type": "io.polysaga.OrderPlaced.v1"},
    ),
    ("StockReserved", "time before year 1", _reserved, {"ce-time": "0001-01-01T00:00:00+14:00"}),
    ("StockReserved", "time after 9999", _reserved, {"ce-time": "9999-12-31T23:59:59-14:00"}),
    ("StockReserved", "time without offset", _reserved, {"ce-time": "2026-01-01T00:00:00"}),
    ("UserRegistered", "control character", lambda o: _registered(o, name="Eve\u001b[2J"), {}),
    ("UserRegistered", "newline in an address", lambda o: _registered(o, email="e@x.io\n"), {}),
]


async def test_forged_and_poison_events_move_no_money_and_break_nothing(
    stack: Stack, http: httpx.AsyncClient, honest: dict[str, Any]
) -> None:
    s = stack.state["services"]
    c: StackClient = honest["client"]
    user_id, order = honest["user_id"], honest["order"]
    errors_before = await server_errors(http, stack.state)
    restarts_before = restarts(stack.state_file)
    logs = LogWatch(stack.state)
    refused_total = await metric(
        http, s["payment"], "polysaga_events_rejected_total", event_type="StockReserved"
    )
    rejected_payments = await metric(
        http, s["order"], "polysaga_events_rejected_total", event_type="PaymentProcessed"
    )
    refused_steps = await metric(
        http, s["order-view"], "polysaga_saga_steps_refused_total", step="StockReservationFailed"
    )

    never_placed = [str(uuid.uuid4()) for _ in range(5)]
    poison_ids: set[str] = set()
    async with as_service(stack, "inventory") as inventory:
        # Class 7: reservations for orders never placed, naming the honest user.
        for order_id in never_placed:
            body = {
                "order_id": order_id,
                "user_id": user_id,
                "items": [{"sku": honest["sku"], "quantity": 1}],
                "total": "5.00",
            }
            for _ in range(2):
                await forge(inventory, "StockReserved", order_id, body)
        # Class 7: a reservation of the real order with another total, and another user.
        for total, who in (("5.00", user_id), ("8.00", "someone-else"), ("0", user_id)):
            body = {
                "order_id": order["order_id"],
                "user_id": who,
                "items": [{"sku": honest["sku"], "quantity": 2}],
                "total": total,
            }
            await forge(inventory, "StockReserved", order["order_id"], body)
        # Class 9: the reservation failing after the order was confirmed.
        await forge(
            inventory,
            "StockReservationFailed",
            order["order_id"],
            {"order_id": order["order_id"], "reason": "forged"},
        )
    async with as_service(stack, "payment") as payment:
        # Class 7: a payment for no order of the order service's.
        for _ in range(3):
            ghost = str(uuid.uuid4())
            body = {"order_id": ghost, "user_id": user_id, "amount": "5.00"}
            await forge(payment, "PaymentProcessed", ghost, body)
    # Classes 6 and 8: poison, each with its producer's own credentials.
    poison_subjects: dict[str, str] = {}
    for name, _why, body, overrides in POISON:
        async with as_service(stack, declaration.spec(name).producer) as js:
            order_id = str(uuid.uuid4())
            ce_id = await forge(js, name, order_id, body(order_id), **overrides)
            poison_ids.add(ce_id)
            poison_subjects[ce_id] = name
    # Class 5: products whose SKU no field name can hold, from the catalog's own user.
    async with as_service(stack, "catalog") as catalog:
        for sku in ("", "$x", ".", "X\n", "a\u0000b"):
            body = {"sku": sku, "name": "Forged", "price": "1.00", "version": 1}
            ce_id = await forge(catalog, "ProductCreated", sku or "-", body)
            poison_ids.add(ce_id)
            poison_subjects[ce_id] = "ProductCreated"

    await quiet(stack, http)

    # No money moved but the honest charge; nothing was charged for the forged orders.
    assert await c.balance(user_id) == "42.00"
    for order_id in never_placed:
        assert await c.payments(order_id) == []
    [charge] = await c.payments(order["order_id"])
    assert (charge["status"], charge["amount"]) == ("CHARGED", "8.00")
    # Each forged claim refused was counted by the service that refused it.
    assert (
        await metric(
            http, s["payment"], "polysaga_events_rejected_total", event_type="StockReserved"
        )
        == refused_total + 3
    )
    assert (
        await metric(
            http, s["order"], "polysaga_events_rejected_total", event_type="PaymentProcessed"
        )
        == rejected_payments + 3
    )
    # The confirmed order stays confirmed; its history shows no failure after the fact.
    assert (await c.order(order["order_id"]))["status"] == "CONFIRMED"
    summary = (await http.get(f"{s['order-view']}/orders/{order['order_id']}/summary")).json()
    assert "StockReservationFailed" not in [h["step"] for h in summary["history"]]
    assert (
        await metric(
            http,
            s["order-view"],
            "polysaga_saga_steps_refused_total",
            step="StockReservationFailed",
        )
        == refused_steps + 1
    )

    # Every poison message was dead-lettered, by every consumer of its subject, at once.
    letters = await dead_letters(stack, poison_ids)
    assert set(letters) == poison_ids, f"not dead-lettered: {poison_ids - set(letters)}"
    for ce_id, copies in letters.items():
        consumers = declaration.spec(poison_subjects[ce_id]).consumers
        assert len(copies) == len(consumers), (poison_subjects[ce_id], copies)
        for letter in copies:
            assert letter["polysaga-dead-letter-reason"] == "malformed", letter
            assert letter["polysaga-deliveries"] == "1", letter

    # Every consumer is live: a new order goes through the whole saga and reaches the view.
    fresh = await c.wait_ended(await c.place(user_id, {honest["sku"]: 1}))
    assert (fresh["status"], fresh["total"]) == ("CONFIRMED", "4.00")

    async def in_view() -> bool:
        url = f"{s['order-view']}/orders/{fresh['order_id']}/summary"
        response = await http.get(url, params={"min_version": fresh["version"]})
        return response.status_code == 200 and response.json()["status"] == "CONFIRMED"

    await eventually(in_view)
    await quiet(stack, http)
    assert await server_errors(http, stack.state) == errors_before
    assert logs.errors() == []
    assert restarts(stack.state_file) == restarts_before

    # The CLI's own invariant checks over every order (and a rebuild of the view). Its
    # composition checks load the gateway: on a busy machine a dependency may not answer
    # within the gateway's bound, which is its 503 with Retry-After, by design; nothing else.
    checked = stack.cli("check", "--json")
    report = json.loads(checked.stdout)
    assert checked.returncode == 0, (report.get("violations"), report)
    assert all(report["invariants"].values()), report["violations"]
    errors_after = await server_errors(http, stack.state)
    assert {k: v for k, v in errors_after.items() if not k.endswith(" 503")} == {
        k: v for k, v in errors_before.items() if not k.endswith(" 503")
    }
    assert logs.errors() == []
    assert restarts(stack.state_file) == restarts_before
