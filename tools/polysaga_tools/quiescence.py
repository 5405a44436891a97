"""Waiting until a stack is quiet: no saga pending, no outbox entry unpublished, nothing
pending or unacknowledged at any durable consumer. A saga's end is not the end of its
work: compensations (a release after a cancellation) and the read side follow it, so the
invariants are checked only once everything in flight has landed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import nats

from polysaga_tools.delivery_facts import (
    UNPUBLISHED,
    consumer_states,
    libpq,
    mongo_outbox_pending,
)
from polysaga_tools.stack import nats_admin_login


async def backlog(client: httpx.AsyncClient, state: dict[str, Any]) -> dict[str, int]:
    """What is still on its way, by kind (all zero when the stack is quiet)."""
    stats = (await client.get(f"{state['services']['order']}/stats")).raise_for_status().json()
    nc = await nats.connect(state["nats"], **nats_admin_login(state), max_reconnect_attempts=2)
    try:
        consumers = await consumer_states(nc.jetstream())
    finally:
        await nc.close()
    outbox = 0
    for url in state["postgres"]["databases"].values():
        conn = await asyncpg.connect(libpq(url))
        try:
            outbox += int(await conn.fetchval(UNPUBLISHED))
        finally:
            await conn.close()
    for url in (state.get("mongo") or {}).values():
        outbox += await mongo_outbox_pending(url)
    return {
        "pending sagas": int(stats.get("PENDING", 0)),
        "outbox entries": outbox,
        "consumer pending": sum(c.pending + c.ack_pending for c in consumers.values()),
    }


async def wait_quiescent(
    client: httpx.AsyncClient,
    state: dict[str, Any],
    timeout_s: float,
    on_tick: Callable[[dict[str, int]], None] = lambda _: None,
) -> float:
    """Until the backlog is empty twice in a row a second apart (or timeout_s); returns
    how long it took. The checks that follow report whatever did not land."""
    started = time.monotonic()
    quiet_rounds = 0
    while quiet_rounds < 2 and time.monotonic() - started < timeout_s:
        await asyncio.sleep(1)
        try:
            current = await backlog(client, state)
        except Exception:  # a server still recovering is not quiet yet
            quiet_rounds = 0
            continue
        on_tick(current)
        quiet_rounds = quiet_rounds + 1 if not any(current.values()) else 0
    return time.monotonic() - started
