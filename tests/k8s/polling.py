"""Waiting for eventual consistency: poll until a condition holds, generously."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None],
    *,
    timeout_s: float = 120,
    interval_s: float = 0.5,
    what: str | Callable[[], str] = "condition",
) -> T:
    """The first truthy result of ``probe``; fails with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"not reached within {timeout_s:.0f} s: {described}")
        time.sleep(interval_s)
