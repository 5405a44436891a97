"""The chaos schedule: seeded and deterministic, every kind of fault at least once, faults
apart enough to recover, and a run too short for one of each refused."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from polysaga_tools.faults import (
    FAULT_KINDS,
    KILL_SERVICE,
    KILL_SERVICE_MID_BURST,
    MIN_GAP_S,
    PAUSE_SERVICE,
    ScheduleError,
    Targets,
    build_schedule,
    minimum_duration_s,
)

TARGETS = Targets(
    services=["order", "order#2", "inventory", "inventory#2", "user", "gateway"],
    consumers=["order", "order#2", "inventory", "inventory#2"],
)


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert build_schedule(120, 7, TARGETS) == build_schedule(120, 7, TARGETS)


def test_another_seed_gives_another_schedule() -> None:
    assert build_schedule(120, 7, TARGETS) != build_schedule(120, 8, TARGETS)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("duration", [minimum_duration_s(), 45, 120, 600])
def test_every_kind_is_scheduled_within_the_run(seed: int, duration: float) -> None:
    schedule = build_schedule(duration, seed, TARGETS)
    assert set(Counter(f.kind for f in schedule)) == set(FAULT_KINDS)
    assert all(0 < f.at_s < duration for f in schedule)


@pytest.mark.parametrize("seed", range(20))
def test_faults_are_in_time_order_and_apart(seed: int) -> None:
    times = [f.at_s for f in build_schedule(45, seed, TARGETS)]
    assert times == sorted(times)
    # Slots are MIN_GAP_S apart at the least; jitter moves a fault by under a quarter slot.
    assert min(b - a for a, b in itertools.pairwise(times)) > MIN_GAP_S * 0.74


def test_a_long_run_repeats_faults_at_the_nominal_pace() -> None:
    schedule = build_schedule(120, 1, TARGETS)
    assert len(schedule) > 2 * len(FAULT_KINDS) - 1


def test_service_faults_hit_the_right_kind_of_process() -> None:
    for fault in build_schedule(600, 3, TARGETS):
        if fault.kind == KILL_SERVICE:
            assert fault.target in TARGETS.services
        elif fault.kind in (KILL_SERVICE_MID_BURST, PAUSE_SERVICE):
            assert fault.target in TARGETS.consumers
        else:
            assert fault.target == ""


def test_a_run_too_short_for_every_kind_is_refused() -> None:
    with pytest.raises(ScheduleError, match="--duration"):
        build_schedule(minimum_duration_s() - 1, 1, TARGETS)
