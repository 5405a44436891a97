"""Open-loop load and what it observes: orders are sent at their scheduled arrival times
whatever the responses do (a bounded httpx pool; a request that waits for a connection still
counts from its scheduled time), and each saga's end is observed on the ORDERS stream by an
ephemeral ordered consumer, so no polling adds load or hides latency."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from polysaga_tools.open_loop import arrival_offsets

TERMINAL_EVENTS = ("OrderConfirmed", "OrderCancelled")


@dataclass
class PlacedOrder:
    due: float  # monotonic time the schedule said to send it
    order_id: str | None = None
    failed: bool = False
    error: str | None = None  # why it failed: the HTTP status or the transport error


@dataclass
class SagaEnds:
    """Order id -> monotonic time its OrderConfirmed/OrderCancelled reached us."""

    ended: dict[str, float] = field(default_factory=dict)
    ended_in_order: list[str] = field(default_factory=list)
    due: dict[str, float] = field(default_factory=dict)  # accepted order id -> its arrival time
    _waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    async def subscribe(self, js: JetStreamContext) -> Any:
        async def on_message(msg: Msg) -> None:
            order_id = (msg.headers or {}).get("ce-subject")
            terminal = msg.subject.rsplit(".", 1)[-1] in TERMINAL_EVENTS
            if order_id and terminal and order_id not in self.ended:
                self.ended[order_id] = time.monotonic()
                self.ended_in_order.append(order_id)
                waiter = self._waiters.pop(order_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(self.ended[order_id])

        return await js.subscribe(
            "orders.events.>",
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def wait_for(self, order_id: str, timeout_s: float) -> float:
        """The monotonic time the order's saga ended, once it has."""
        if order_id in self.ended:
            return self.ended[order_id]
        waiter = self._waiters.setdefault(order_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)

    def latency_ms(self, order: PlacedOrder) -> float | None:
        if order.order_id is None or order.order_id not in self.ended:
            return None
        return (self.ended[order.order_id] - order.due) * 1000.0


OrderBody = Callable[[random.Random], dict[str, Any]]


async def run_open_loop(
    client: httpx.AsyncClient,
    order_url: str,
    make_body: OrderBody,
    rate_per_s: float,
    duration_s: float,
    *,
    seed: int = 1,
    ends: SagaEnds | None = None,
    max_in_flight: int = 64,
    on_sent: Callable[[], None] | None = None,
) -> list[PlacedOrder]:
    """Send ``rate * duration`` orders at their arrival times; returns when all responses
    are in. Each order is its own task, so a slow response delays no later arrival; at most
    ``max_in_flight`` requests are open at once (match the client's connection pool), and
    an order waiting for one still counts its latency from its arrival time."""
    rng = random.Random(seed)
    start = time.monotonic() + 0.05
    placed: list[PlacedOrder] = []
    tasks: list[asyncio.Task[None]] = []

    # Requests beyond the pool wait here, not in httpx's own pool queue: httpcore rescans
    # every queued request whenever a connection frees, so hundreds queued there starve
    # this event loop (the generator then misses its own schedule).
    in_flight = asyncio.Semaphore(max_in_flight)

    async def place(order: PlacedOrder, body: dict[str, Any]) -> None:
        try:
            async with in_flight:
                response = await client.post(f"{order_url}/orders", json=body)
            if response.is_success:
                order.order_id = str(response.json()["order_id"])
                if ends is not None:
                    ends.due[order.order_id] = order.due
            else:
                order.failed, order.error = True, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            order.failed, order.error = True, type(exc).__name__

    for offset in arrival_offsets(rate_per_s, duration_s):
        delay = start + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        order = PlacedOrder(due=start + offset)
        placed.append(order)
        tasks.append(asyncio.create_task(place(order, make_body(rng))))
        if on_sent is not None:
            on_sent()
    await asyncio.gather(*tasks)
    return placed


@dataclass(frozen=True)
class ClosedLoopResult:
    orders: int
    concurrency: int
    sagas_per_s: float
    failed: int


async def run_closed_loop(
    client: httpx.AsyncClient,
    order_url: str,
    make_body: OrderBody,
    orders: int,
    concurrency: int,
    ends: SagaEnds,
    *,
    seed: int = 1,
    saga_timeout_s: float = 60.0,
) -> ClosedLoopResult:
    """``concurrency`` clients, each placing an order and waiting for its saga to end before
    placing the next, until ``orders`` sagas have ended: the throughput a fixed population
    of users gets (the way the peer is measured)."""
    rng = random.Random(seed)
    remaining = orders
    failed = 0

    async def client_loop() -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            response = await client.post(f"{order_url}/orders", json=make_body(rng))
            if not response.is_success:
                failed += 1
                continue
            await ends.wait_for(str(response.json()["order_id"]), saga_timeout_s)

    started = time.monotonic()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return ClosedLoopResult(orders, concurrency, round((orders - failed) / elapsed, 1), failed)
