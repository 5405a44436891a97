"""Periodic work, written once: a loop that runs a job every interval until stopped, and a
throttle for work a hot loop should do at most once an interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from polysaga.persistence.database import is_retryable

log = logging.getLogger(__name__)


async def run_periodically(
    stop: asyncio.Event,
    interval_s: float,
    job: Callable[[], Awaitable[bool | None]],
    *,
    name: str,
) -> None:
    """Run ``job`` every ``interval_s`` until ``stop`` is set. A job that returns True has
    more to do and runs again at once. A failure is logged and retried next interval; one
    that lost a race (deadlock, serialization) is expected now and then and logged quietly."""
    while not stop.is_set():
        try:
            if await job():
                continue
        except Exception as exc:
            if is_retryable(exc):
                log.info("%s lost a race; will run again", name)
            else:
                log.exception("%s failed; will run again", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


class Throttle:
    """``due()`` is true at most once every ``interval_s`` (and the first time)."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return False
        self._last = now
        return True
