"""``polysaga dead-letters`` on the running stack: the notification service gives up on two
order confirmations (the fault: its replica has lost the user's address); once the address
is back, one letter is replayed and mailed exactly once, even when replayed twice, and the
other is discarded with a reason and then refused for replay."""

from __future__ import annotations

import asyncio
import json
import mailbox
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from conftest import Stack
from stack_client import StackClient


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def notification_db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_libpq(stack.state["postgres"]["databases"]["notification"]))
    yield conn
    await conn.close()


async def _until(condition: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        await asyncio.sleep(0.2)


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _mails(stack: Stack, order_id: str) -> int:
    box = mailbox.Maildir(stack.state["smtp"]["maildir"], create=False)
    return sum(1 for m in box if m["Message-ID"] == f"<{order_id}.confirmed@polysaga>")


async def _notification_settled(stack: Stack) -> bool:
    admin = stack.state["nats_admin"]
    nc = await nats.connect(stack.state["nats"], user=admin["user"], password=admin["password"])
    try:
        info = await nc.jetstream().consumer_info("ORDERS", "notification")
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)
    finally:
        await nc.close()


async def test_dead_letters_are_listed_shown_replayed_once_and_discarded(
    stack: Stack, http: httpx.AsyncClient, unique: str, notification_db: asyncpg.Connection
) -> None:
    c = StackClient(http, stack.state["services"])
    registered = await http.post(
        f"{stack.url('user')}/users", json={"name": "Dee", "email": f"dee-{unique}@example.org"}
    )
    user = registered.raise_for_status().json()["user_id"]

    async def replica_has_user() -> bool:
        row = await notification_db.fetchval("SELECT 1 FROM recipients WHERE user_id = $1", user)
        return row is not None

    await _until(replica_has_user, "the user's address at notification")
    # The fault: notification's replica no longer finds the user.
    await notification_db.execute(
        "UPDATE recipients SET user_id = user_id || '#hidden' WHERE user_id = $1", user
    )
    sku = f"{unique}-dl"
    await c.seed(prices={sku: "2.00"}, stock={sku: 10}, balances={user: "10.00"})
    orders = [await c.place(user, {sku: 1}) for _ in range(2)]
    for order in orders:
        assert (await c.wait_ended(order))["status"] == "CONFIRMED"
    confirmations = {}
    for order in orders:
        events = (await http.get(f"{c.order_url}/orders/{order}/events")).json()
        (confirmed,) = [e for e in events if e["type"].startswith("OrderConfirmed")]
        confirmations[confirmed["event_id"]] = order

    async def both_letters() -> dict[str, int] | None:
        listed = _json(stack.cli("dead-letters", "list", "--service", "notification", "--json"))
        ids = {x["event_id"]: x["id"] for x in listed if x["event_id"] in confirmations}
        return ids if len(ids) == 2 else None

    letters = await _until(both_letters, "two dead letters at notification")
    (replayed_event, replayed_id), (discarded_event, discarded_id) = sorted(letters.items())

    shown = _json(stack.cli("dead-letters", "show", str(replayed_id), "--json"))
    assert shown["service"] == "notification"
    assert shown["subject"] == "orders.events.OrderConfirmed"
    assert shown["reason"] == "exhausted" and "RecipientUnknownError" in shown["detail"]
    assert shown["deliveries"] == 5
    assert shown["first_seen"] <= shown["last_seen"]
    assert shown["status"] == "dead"
    assert shown["headers"]["ce-id"] == replayed_event
    assert shown["payload"]["order_id"] == confirmations[replayed_event]
    text = stack.cli("dead-letters", "show", str(replayed_id))
    assert text.returncode == 0 and "RecipientUnknownError" in text.stdout

    # Remove the fault, then replay one letter twice: one mail, one record.
    await notification_db.execute(
        "UPDATE recipients SET user_id = $1 WHERE user_id = $1 || '#hidden'", user
    )
    order = confirmations[replayed_event]
    assert stack.cli("dead-letters", "replay", str(replayed_id)).returncode == 0

    async def mailed() -> bool:
        return _mails(stack, order) == 1

    await _until(mailed, "the replayed confirmation's mail")
    assert stack.cli("dead-letters", "replay", str(replayed_id)).returncode == 0
    await _until(lambda: _notification_settled(stack), "notification's consumer settled")
    assert _mails(stack, order) == 1
    notes = (await http.get(f"{stack.url('notification')}/notifications?order_id={order}")).json()
    assert len(notes) == 1

    discarded = stack.cli("dead-letters", "discard", str(discarded_id), "--reason", "test order")
    assert discarded.returncode == 0, discarded.stderr
    refused = stack.cli("dead-letters", "replay", str(discarded_id))
    assert refused.returncode == 1 and "discarded (test order)" in refused.stderr
    assert _mails(stack, confirmations[discarded_event]) == 0

    listed = _json(stack.cli("dead-letters", "list", "--json"))
    statuses = {x["id"]: (x["status"], x["resolution"]) for x in listed}
    assert statuses[replayed_id][0] == "replayed" and statuses[replayed_id][1]["replays"] == 2
    assert statuses[discarded_id] == (
        "discarded",
        {
            "status": "discarded",
            "at": statuses[discarded_id][1]["at"],
            "reason": "test order",
            "replays": 0,
        },
    )


def test_bad_dead_letter_requests_are_refused_clearly(stack: Stack) -> None:
    neither = stack.cli("dead-letters", "replay")
    assert neither.returncode == 2 and "either a letter ID or --all" in neither.stderr
    unknown = stack.cli("dead-letters", "show", "99999999")
    assert unknown.returncode == 1 and "no dead letter 99999999" in unknown.stderr
    nobody = stack.cli("dead-letters", "list", "--service", "nobody")
    assert nobody.returncode == 1 and "unknown service 'nobody'" in nobody.stderr
    no_reason = stack.cli("dead-letters", "discard", "1")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
