"""The faults ``polysaga chaos`` injects and the seeded schedule that spreads them over a run.

The schedule is a pure function of (duration, seed, targets): the same seed gives the same
faults at the same moments against the same processes, and every kind appears at least
once whenever the duration leaves room for one of each (shorter runs are refused).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

KILL_SERVICE = "kill_service"
KILL_SERVICE_MID_BURST = "kill_service_mid_burst"
KILL_NATS = "kill_nats"
RESTART_POSTGRES_FAST = "restart_postgres_fast"
RESTART_POSTGRES_IMMEDIATE = "restart_postgres_immediate"
PAUSE_FERRETDB = "pause_ferretdb"
PAUSE_SERVICE = "pause_service"
DUPLICATE_DELIVERIES = "duplicate_deliveries"

FAULT_KINDS: tuple[str, ...] = (
    KILL_SERVICE,
    KILL_SERVICE_MID_BURST,
    KILL_NATS,
    RESTART_POSTGRES_FAST,
    RESTART_POSTGRES_IMMEDIATE,
    PAUSE_FERRETDB,
    PAUSE_SERVICE,
    DUPLICATE_DELIVERIES,
)
FAULT_DESCRIPTIONS = {
    KILL_SERVICE: "SIGKILL of a random service process; the supervisor restarts it",
    KILL_SERVICE_MID_BURST: "SIGKILL of a consuming instance right after a burst of orders,"
    " while it is handling their events",
    KILL_NATS: "SIGKILL of nats-server (file storage); the supervisor restarts it",
    RESTART_POSTGRES_FAST: "pg_ctl stop -m fast, then PostgreSQL starts again",
    RESTART_POSTGRES_IMMEDIATE: "pg_ctl stop -m immediate (crash recovery on start)",
    PAUSE_FERRETDB: "SIGSTOP of FerretDB for longer than the ack wait, then SIGCONT",
    PAUSE_SERVICE: "SIGSTOP of a consuming instance for longer than the ack wait, then SIGCONT",
    DUPLICATE_DELIVERIES: "copies of published events re-published under a new Nats-Msg-Id,"
    " so JetStream's dedup cannot drop them and the inboxes must",
}

# Faults are at least this far apart, so one is mostly recovered from before the next, and
# at most NOMINAL_GAP_S apart in a long run. The first waits for the load to be flowing;
# the last leaves time before the load stops.
MIN_GAP_S = 4.0
NOMINAL_GAP_S = 6.0
LEAD_S = 3.0
TAIL_S = 2.0


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after the load started
    kind: str
    target: str = ""  # the process a service fault hits; "" for the servers


@dataclass(frozen=True)
class Targets:
    services: Sequence[str]  # every service process (instances included)
    consumers: Sequence[str]  # the processes of services that consume events


def minimum_duration_s() -> float:
    return LEAD_S + TAIL_S + MIN_GAP_S * len(FAULT_KINDS)


class ScheduleError(ValueError):
    """The run is too short to inject every kind of fault."""


def build_schedule(duration_s: float, seed: int, targets: Targets) -> list[Fault]:
    """Faults in time order: one slot every gap seconds, each kind in a slot of its own at
    least once (at seeded places), the remaining slots filled with seeded kinds."""
    if duration_s < minimum_duration_s():
        raise ScheduleError(
            f"a run of {duration_s:g} s cannot hold one of each of the {len(FAULT_KINDS)}"
            f" fault kinds; use --duration {math.ceil(minimum_duration_s())} or more"
        )
    rng = random.Random(seed)
    window = duration_s - LEAD_S - TAIL_S
    gap = min(NOMINAL_GAP_S, window / len(FAULT_KINDS))
    slots = max(len(FAULT_KINDS), int(window // gap))
    kinds: list[str | None] = [None] * slots
    for slot, kind in zip(rng.sample(range(slots), len(FAULT_KINDS)), FAULT_KINDS, strict=True):
        kinds[slot] = kind
    faults = []
    for slot, fixed in enumerate(kinds):
        chosen = fixed or rng.choice(FAULT_KINDS)
        at = LEAD_S + slot * gap + rng.uniform(0, gap * 0.25)
        faults.append(Fault(round(at, 3), chosen, _target(rng, chosen, targets)))
    return faults


def _target(rng: random.Random, kind: str, targets: Targets) -> str:
    if kind == KILL_SERVICE:
        return rng.choice(list(targets.services))
    if kind in (KILL_SERVICE_MID_BURST, PAUSE_SERVICE):
        return rng.choice(list(targets.consumers))
    return ""
