"""Waiting for a condition, never for a fixed time: the one helper every async test uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    timeout_s: float = 60,
    *,
    what: str = "the condition",
    every_s: float = 0.1,
) -> T:
    """``probe()``'s first truthy answer, asked every ``every_s``; fails the test after
    ``timeout_s`` (generous: it only costs time when the condition never comes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (result := await probe()):
        assert loop.time() < deadline, f"{what} not reached in {timeout_s:g} s"
        await asyncio.sleep(every_s)
    return result
