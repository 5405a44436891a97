"""CPU time per process of the stack, read with psutil: each process's own user + system
time, plus its children's (those it has reaped, and those still running), so PostgreSQL's
postmaster counts every backend it forked. The bench process counts only its own time: the
stack it started is its children, counted each under its own name. The difference of two
readings over a phase, divided by the sagas of that phase, is each process's CPU cost per
saga."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import psutil

BENCH_PROCESS = "bench"  # the load generator and observer: this very process


def _cpu_seconds(process: psutil.Process, *, with_children: bool = True) -> float:
    times = process.cpu_times()
    if not with_children:
        return float(times.user + times.system)
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return float(total)


def cpu_seconds(pids: Mapping[str, int | None]) -> dict[str, float]:
    """Cumulative CPU seconds of each named process (and of this process, as ``bench``);
    a process that is gone is left out."""
    readings: dict[str, float] = {}
    for name, pid in pids.items():
        if pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            readings[name] = _cpu_seconds(psutil.Process(pid))
    readings[BENCH_PROCESS] = _cpu_seconds(psutil.Process(os.getpid()), with_children=False)
    return readings


def per_saga_ms(
    before: Mapping[str, float], after: Mapping[str, float], sagas: int
) -> dict[str, float]:
    """Milliseconds of CPU each process spent per saga between two readings (processes in
    both readings only; one restarted in between is left out rather than counted wrong)."""
    if sagas <= 0:
        return {}
    spent = {
        name: after[name] - before[name]
        for name in sorted(after)
        if name in before and after[name] >= before[name]
    }
    return {name: round(seconds * 1000 / sagas, 2) for name, seconds in spent.items()}
