"""Open-loop order load for ``polysaga chaos``: orders are started at a fixed rate whatever
the system's state (a closed loop would slow down exactly when a fault hits and hide it),
each retried with its idempotency key across the order service's instances until accepted."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

# A placement is given up after this long; the order may still exist (its response lost),
# which the checks find because they list every order the order service holds.
PLACE_TIMEOUT_S = 120.0


class OpenLoopLoad:
    def __init__(
        self, client: httpx.AsyncClient, order_urls: Sequence[str], orders: Sequence[dict[str, Any]]
    ) -> None:
        self._client = client
        self._urls = itertools.cycle(order_urls)
        self._orders = iter(orders)
        self._tasks: set[asyncio.Task[None]] = set()
        self.placed: list[str] = []
        self.given_up = 0
        self.retries = 0
        self.rejected: list[str] = []  # 4xx answers: a bug in the load or the service

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, rate_per_s: float, duration_s: float) -> None:
        """Start one order every 1/rate seconds for duration_s, on a fixed clock."""
        started = time.monotonic()
        for n in itertools.count():
            at = started + n / rate_per_s
            if at - started >= duration_s or not self._start_next():
                return
            await asyncio.sleep(max(0.0, at + 1 / rate_per_s - time.monotonic()))

    async def burst(self, size: int) -> int:
        """Start size orders at once and wait until each is accepted (or given up)."""
        tasks = [t for t in (self._start_next() for _ in range(size)) if t is not None]
        if tasks:
            await asyncio.wait(tasks)
        return len(tasks)

    async def finish(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _start_next(self) -> asyncio.Task[None] | None:
        body = next(self._orders, None)
        if body is None:
            return None
        task = asyncio.create_task(self._place(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _place(self, body: dict[str, Any]) -> None:
        key = str(uuid.uuid4())  # a retry after a lost response creates nothing new
        deadline = time.monotonic() + PLACE_TIMEOUT_S
        delay = 0.1
        while time.monotonic() < deadline:
            try:
                response = await self._client.post(
                    f"{next(self._urls)}/orders", json=body, headers={"Idempotency-Key": key}
                )
                if response.status_code < 400:
                    self.placed.append(str(response.json()["order_id"]))
                    return
                if response.status_code < 500:
                    self.rejected.append(f"{response.status_code}: {response.text[:200]}")
                    return
            except httpx.TransportError:
                pass
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)
        self.given_up += 1
