"""Periodic work: reruns at once when there is more, survives failures, stops on request."""

from __future__ import annotations

import asyncio

from polysaga.schedule import Throttle, run_periodically


async def test_a_job_with_more_to_do_runs_again_without_waiting() -> None:
    stop = asyncio.Event()
    runs = 0

    async def job() -> bool:
        nonlocal runs
        runs += 1
        if runs == 5:
            stop.set()
        return True  # always "more to do": only an immediate rerun reaches 5 in time

    await asyncio.wait_for(run_periodically(stop, 60, job, name="test"), 2)
    assert runs == 5


async def test_a_failing_job_is_retried_after_the_interval() -> None:
    stop = asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stop.set()
        raise RuntimeError("boom")

    await asyncio.wait_for(run_periodically(stop, 0.01, job, name="test"), 2)
    assert runs == 3


def test_throttle_is_due_once_per_interval() -> None:
    throttle = Throttle(3600)
    assert throttle.due() is True
    assert throttle.due() is False
    assert Throttle(0).due() is True
