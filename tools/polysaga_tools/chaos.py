"""``polysaga chaos``: the local stack with two instances of every consuming service, an
open-loop order load, faults injected on a seeded schedule, then quiescence and every
invariant checked: the saga's, the read side's, and delivery (no lost event, no
duplicated effect)."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from polysaga.events import declaration
from polysaga_tools import faults, invariants
from polysaga_tools.delivery import evaluate_delivery
from polysaga_tools.delivery_facts import gather_delivery_facts, mail_resends
from polysaga_tools.demo import DemoPlan, prepare_workload
from polysaga_tools.fault_injection import FaultInjector
from polysaga_tools.load import OpenLoopLoad
from polysaga_tools.quiescence import wait_quiescent
from polysaga_tools.read_side import check_read_side
from polysaga_tools.stack import APP_SERVICES, LocalStack
from polysaga_tools.stack_access import stack_client

# Every consuming service runs twice: the instances share each durable pull consumer (the
# server hands a message to one of them) and the outbox relays claim rows with FOR UPDATE
# SKIP LOCKED. The order view is the exception, with the reason printed in the report.
SINGLE_INSTANCE = {
    "order-view": (
        "FerretDB v1 applies an update as read-modify-write outside a transaction, so two"
        " processes writing one summary lose updates (measured: two clients, each applying"
        " the view's guarded history upserts to the same 3 summaries 60 times, left 87 of"
        " 360 updates lost or inconsistent; one client, 0). One process on one connection"
        " serialises them. On a real MongoDB the guarded upserts are safe with any number"
        " of instances."
    ),
}
CONSUMERS = tuple(s for s in APP_SERVICES if declaration.consumed_by(s))


def replicas() -> dict[str, int]:
    return {s: 1 if s in SINGLE_INSTANCE else 2 for s in CONSUMERS}


@dataclass(frozen=True)
class ChaosPlan:
    duration_s: float
    seed: int
    rate_per_s: float = 4.0
    burst_size: int = 20
    ack_wait_s: float = 3.0
    payment_failure_rate: float = 0.1
    settle_timeout_s: float = 240.0

    @property
    def pause_s(self) -> float:
        """A pause outlasts the ack wait, so the server redelivers what the paused held."""
        return self.ack_wait_s * 1.5

    def service_env(self) -> dict[str, str]:
        return {
            "POLYSAGA_ACK_WAIT_S": f"{self.ack_wait_s:g}",
            "POLYSAGA_REDELIVERY_BACKOFF_S": "0.2",
            "POLYSAGA_REDELIVERY_BACKOFF_MAX_S": "2",
        }

    def orders_needed(self, schedule: list[faults.Fault]) -> int:
        bursts = sum(f.kind == faults.KILL_SERVICE_MID_BURST for f in schedule)
        return math.ceil(self.rate_per_s * self.duration_s) + bursts * self.burst_size


class Progress(Protocol):
    def started(self, stack: LocalStack, schedule: list[faults.Fault]) -> None: ...
    def fault(self, fault: faults.Fault, outcome: str) -> None: ...
    def phase(self, text: str) -> None: ...
    def tick(self, figures: dict[str, Any]) -> None: ...


@dataclass
class ChaosResult:
    faults: Counter[str]
    orders: int
    lost: int
    duplicated_effects: int
    dead_lettered: int
    invariants: dict[str, bool]
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def missing_kinds(self) -> list[str]:
        return [k for k in faults.FAULT_KINDS if not self.faults[k]]

    @property
    def ok(self) -> bool:
        return all(self.invariants.values()) and not self.missing_kinds

    def as_json(self) -> dict[str, Any]:
        return {
            "faults": {k: self.faults[k] for k in faults.FAULT_KINDS},
            "orders": self.orders,
            "lost": self.lost,
            "duplicated_effects": self.duplicated_effects,
            "dead_lettered": self.dead_lettered,
            "invariants": self.invariants,
            **self.figures,
            "violations": self.violations[:30],
        }


def targets(stack: LocalStack) -> faults.Targets:
    return faults.Targets(
        services=[i for s in stack.services for i in stack.instances[s]],
        consumers=[i for s in CONSUMERS for i in stack.instances[s]],
    )


async def run_chaos(plan: ChaosPlan, data_dir: Path, progress: Progress) -> ChaosResult:
    stack = LocalStack(
        data_dir, data_dir / "stack.json", replicas=replicas(), service_env=plan.service_env()
    )
    # SIGTERM, like Ctrl-C, cancels the run, so the stack is stopped, not orphaned.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await stack.start()
        return await _run(stack, plan, progress)
    finally:
        await stack.stop()


async def _run(stack: LocalStack, plan: ChaosPlan, progress: Progress) -> ChaosResult:
    schedule = faults.build_schedule(plan.duration_s, plan.seed, targets(stack))
    progress.started(stack, schedule)
    state = stack.state()
    services: dict[str, str] = state["services"]
    limits = httpx.Limits(max_connections=200)
    async with stack_client(state, timeout=10, limits=limits) as client:
        progress.phase("seeding users, products, stock and accounts")
        workload = await prepare_workload(
            client,
            services,
            DemoPlan(
                orders=plan.orders_needed(schedule),
                payment_failure_rate=plan.payment_failure_rate,
                scarce_stock=True,
                seed=plan.seed,
            ),
        )
        load = OpenLoopLoad(client, state["instances"]["order"], workload.orders)
        injector = FaultInjector(
            stack, seed=plan.seed, pause_s=plan.pause_s, burst=lambda: load.burst(plan.burst_size)
        )
        progress.phase(f"load at {plan.rate_per_s:g} orders/s with {len(schedule)} faults")
        started = time.monotonic()
        load_run = asyncio.create_task(load.run(plan.rate_per_s, plan.duration_s))
        ticker = asyncio.create_task(_tick(progress, load, started))
        injected: Counter[str] = Counter()
        try:
            for index, fault in enumerate(schedule):
                await asyncio.sleep(max(0.0, started + fault.at_s - time.monotonic()))
                outcome = await injector.inject(index, fault)
                injected[fault.kind] += 1
                progress.fault(fault, outcome)
            await load_run
            progress.phase("load stopped; waiting for the last placements")
            await load.finish()
            ticker.cancel()  # from here on the figures are what is still on its way
            progress.phase("waiting for quiescence")
            quiet_s = await wait_quiescent(
                client, stack.state(), plan.settle_timeout_s, progress.tick
            )
        finally:
            ticker.cancel()
            load_run.cancel()
        progress.phase("checking the invariants")
        report = await invariants.check(client, services, None, workload.baseline)
        read_side = await check_read_side(client, services, report.order_documents)
        report.merge(read_side.invariants, read_side.violations)
        delivery = evaluate_delivery(await gather_delivery_facts(stack.state()))
        report.merge(delivery.invariants, delivery.violations)
        if load.rejected:
            report.merge({"orders_accepted": False}, load.rejected[:10])
    smtp = stack.state()["smtp"]
    return ChaosResult(
        faults=injected,
        orders=report.orders,
        lost=delivery.lost,
        duplicated_effects=delivery.duplicated_effects,
        dead_lettered=await invariants.dead_lettered(state["nats"], state.get("nats_admin")),
        invariants=report.invariants,
        figures={
            "seed": plan.seed,
            "duration_s": plan.duration_s,
            "confirmed": report.confirmed,
            "cancelled": report.cancelled,
            "compensations": report.compensations,
            "events": delivery.events,
            "duplicate_deliveries": delivery.copies,
            "mail_resends": mail_resends(smtp["maildir"]) if smtp else 0,
            "placement_retries": load.retries,
            "placements_given_up": load.given_up,
            "restarts": {k: v for k, v in stack.state()["restarts"].items() if v},
            "quiescent_after_s": round(quiet_s, 1),
            "single_instance": SINGLE_INSTANCE,
        },
        violations=report.violations,
    )


async def _tick(progress: Progress, load: OpenLoopLoad, started: float) -> None:
    while True:
        progress.tick(
            {
                "elapsed_s": round(time.monotonic() - started),
                "placed": len(load.placed),
                "in_flight": load.in_flight,
                "retries": load.retries,
            }
        )
        await asyncio.sleep(1)
