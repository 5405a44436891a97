"""What ``polysaga chaos`` runs and when it passes: replicas per service, the order count
its schedule needs, and a run that missed a fault kind failing even if every check held."""

from __future__ import annotations

from collections import Counter

from polysaga_tools.chaos import CONSUMERS, SINGLE_INSTANCE, ChaosPlan, ChaosResult, replicas
from polysaga_tools.faults import FAULT_KINDS, KILL_SERVICE_MID_BURST, Fault


def test_every_consuming_service_runs_twice_except_the_single_instance_ones() -> None:
    assert set(CONSUMERS) == {
        "order",
        "inventory",
        "payment",
        "notification",
        "order-view",
        "orchestrator",
        "sales",
    }
    assert replicas() == {s: 1 if s in SINGLE_INSTANCE else 2 for s in CONSUMERS}
    assert replicas()["order-view"] == 1 and "FerretDB" in SINGLE_INSTANCE["order-view"]


def test_the_pause_outlasts_the_ack_wait() -> None:
    plan = ChaosPlan(duration_s=45, seed=1, ack_wait_s=3)
    assert plan.pause_s > plan.ack_wait_s
    assert plan.service_env()["POLYSAGA_ACK_WAIT_S"] == "3"


def test_bursts_get_orders_of_their_own() -> None:
    plan = ChaosPlan(duration_s=10, seed=1, rate_per_s=2, burst_size=5)
    schedule = [Fault(1, KILL_SERVICE_MID_BURST, "order"), Fault(2, "kill_nats")]
    assert plan.orders_needed(schedule) == 20 + 5


def result(faults: Counter[str], holds: bool = True) -> ChaosResult:
    return ChaosResult(
        faults=faults,
        orders=10,
        lost=0,
        duplicated_effects=0,
        dead_lettered=0,
        invariants={"no_lost_event": holds, "every_saga_ended": True},
    )


def test_a_run_with_every_kind_and_every_invariant_passes() -> None:
    run = result(Counter(dict.fromkeys(FAULT_KINDS, 1)))
    assert run.ok and run.missing_kinds == []
    body = run.as_json()
    assert {"faults", "orders", "lost", "duplicated_effects", "dead_lettered", "invariants"} <= set(
        body
    )
    assert body["faults"] == dict.fromkeys(FAULT_KINDS, 1)


def test_a_run_that_missed_a_kind_fails_and_names_it() -> None:
    run = result(Counter(dict.fromkeys(FAULT_KINDS[1:], 2)))
    assert not run.ok and run.missing_kinds == [FAULT_KINDS[0]]
    assert run.as_json()["faults"][FAULT_KINDS[0]] == 0


def test_a_broken_invariant_fails_the_run() -> None:
    assert not result(Counter(dict.fromkeys(FAULT_KINDS, 1)), holds=False).ok
