"""``polysaga bench``: sagas per second, saga latency and consistency lag under open-loop
load, beside this machine's own limits (JetStream publishes, PostgreSQL commits), a peer
event store, and the cost of NATS ``sync_interval: always`` - all in one run, on one stack.
The method and the figures are written up in BENCHMARKS.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client
from rich.progress import Progress

from polysaga_tools import limits, peer
from polysaga_tools.bench_load import PlacedOrder, SagaEnds, run_open_loop
from polysaga_tools.bench_probes import PeakRss, consumer_backlogs, lag_histogram
from polysaga_tools.demo import _register_users, _seed
from polysaga_tools.histograms import Buckets, delta
from polysaga_tools.histograms import quantile as histogram_quantile
from polysaga_tools.invariants import Baseline
from polysaga_tools.nats_sync import restart_nats
from polysaga_tools.plot import RunSample
from polysaga_tools.quantiles import quantile
from polysaga_tools.servers import ServerError
from polysaga_tools.stack import APP_SERVICES, nats_admin_login, postgres_admin_dsn
from polysaga_tools.stack_access import stack_client
from polysaga_tools.sustainable import Criterion, StepOutcome, next_rate, verdict

log = logging.getLogger(__name__)

BASE_RATE = 100.0
EVENTS_PER_SAGA_PER_CONSUMER = 2  # the most one durable consumer gets from one saga's stream


@dataclass(frozen=True)
class BenchPlan:
    """Phase lengths, all scaled from ``--duration`` so a short run still does every part."""

    duration_s: float
    max_steps: int = 6
    durability_steps: int = 3
    criterion: Criterion = field(default_factory=Criterion)

    @property
    def limit_s(self) -> float:
        return max(2.0, 0.04 * self.duration_s)

    @property
    def base_phase_s(self) -> float:
        return max(5.0, 0.2 * self.duration_s)

    @property
    def step_s(self) -> float:
        return max(3.0, 0.08 * self.duration_s)

    # A step must start on an empty system, else it measures the last one's leftovers: wait
    # this long for every backlog to empty (a saturated order view can take minutes).
    drain_timeout_s: float = 600.0


@dataclass
class BenchReport:
    max_sagas_per_s: float
    saga_latency_ms: dict[str, float]
    consistency_lag_ms: dict[str, float]
    jetstream_publishes_per_s: float
    postgres_commits_per_s: float
    bound: limits.SagaBound
    peer: peer.PeerResult
    rss_mb: dict[str, float]
    sync_always_max_sagas_per_s: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    samples: list[RunSample] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        bound = round(self.bound.sagas_per_s, 1)
        return {
            "max_sagas_per_s": self.max_sagas_per_s,
            "at_100_per_s": {
                "saga_latency_ms": self.saga_latency_ms,
                "consistency_lag_ms": self.consistency_lag_ms,
            },
            "limits": {
                "jetstream_publishes_per_s": round(self.jetstream_publishes_per_s, 1),
                "postgres_commits_per_s": round(self.postgres_commits_per_s, 1),
            },
            "bound_sagas_per_s": bound,
            "ratio_to_bound": round(self.max_sagas_per_s / bound, 6),
            "peer": {
                "eventsourcing_appends_per_s": round(self.peer.eventsourcing_appends_per_s, 1),
                "polysaga_appends_per_s": round(self.peer.polysaga_appends_per_s, 1),
                "ratio": round(self.peer.ratio, 3),
            },
            "rss_mb": self.rss_mb,
            "durability": {"sync_always_max_sagas_per_s": self.sync_always_max_sagas_per_s},
        }


StateReader = Callable[[], dict[str, Any]]


class Bench:
    def __init__(self, read_state: StateReader, plan: BenchPlan, progress: Progress) -> None:
        self._read_state = read_state
        self.state = read_state()
        self.plan = plan
        self.progress = progress
        self.ends = SagaEnds()
        self.samples: list[RunSample] = []
        self.steps: list[dict[str, Any]] = []
        self._phase, self._rate = "setup", 0.0
        self._started = time.monotonic()
        self._nc: Client | None = None
        self.rss = PeakRss(self._service_pids)
        self._bodies: Callable[[random.Random], dict[str, Any]] | None = None

    def _service_pids(self) -> dict[str, int | None]:
        processes: dict[str, int | None] = self._read_state().get("processes", {})
        return {s: processes.get(s) for s in APP_SERVICES if s in processes}

    @property
    def services(self) -> dict[str, str]:
        return dict(self.state["services"])

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> BenchReport:
        stop = asyncio.Event()
        limits_http = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with stack_client(self.state, timeout=30, limits=limits_http) as client:
            await self._connect()
            monitor = asyncio.create_task(self._monitor(client, stop))
            rss = asyncio.create_task(self.rss.run(stop))
            try:
                await self._seed(client)
                base_ok, latency, lag = await self._base_phase(client)
                max_rate = await self._find_max(
                    client, "ramp", {BASE_RATE: base_ok}, BASE_RATE, self.plan.max_steps
                )
                publishes, commits = await self._limits()
                peer_result = await self._peer()
                sync_always = await self._durability(client, max_rate)
            finally:
                stop.set()
                await asyncio.gather(monitor, rss)
                if self._nc is not None:
                    await self._nc.close()
        return BenchReport(
            max_sagas_per_s=max_rate,
            saga_latency_ms=latency,
            consistency_lag_ms=lag,
            jetstream_publishes_per_s=publishes,
            postgres_commits_per_s=commits,
            bound=limits.saga_bound(commits, publishes),
            peer=peer_result,
            rss_mb=self.rss.megabytes(),
            sync_always_max_sagas_per_s=sync_always,
            steps=self.steps,
            samples=self.samples,
        )

    async def _connect(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = await nats.connect(
            self.state["nats"],
            name="polysaga-bench",
            error_cb=_quiet_reconnect_errors,
            **nats_admin_login(self.state),
        )
        await self.ends.subscribe(self._nc.jetstream())

    async def _seed(self, client: httpx.AsyncClient) -> None:
        task = self.progress.add_task("seeding users, products, stock, accounts", total=None)
        run = uuid.uuid4().hex[:8]
        prices = {f"bench-{run}-sku-{i}": Decimal(100 + i) / 10 for i in range(20)}
        users = list(
            (
                await _register_users(
                    client, self.services["user"], run, [f"u{i}" for i in range(40)]
                )
            ).values()
        )
        baseline = Baseline(
            stock={sku: 10_000_000 for sku in prices},
            balances={u: Decimal("100000000.00") for u in users},
        )
        await _seed(client, self.services, prices, baseline)
        skus = sorted(prices)

        def body(rng: random.Random) -> dict[str, Any]:
            return {
                "user_id": rng.choice(users),
                "items": [{"sku": rng.choice(skus), "quantity": 1}],
            }

        self._bodies = body
        self.progress.remove_task(task)

    async def _base_phase(
        self, client: httpx.AsyncClient
    ) -> tuple[bool, dict[str, float], dict[str, float]]:
        before = await lag_histogram(client, self.services["order-view"])
        ok, latencies = await self._step(client, "100/s", BASE_RATE, self.plan.base_phase_s)
        lag = delta(await lag_histogram(client, self.services["order-view"]), before)
        lag_p50, lag_p99 = histogram_quantile(0.5, lag), histogram_quantile(0.99, lag)
        if not latencies or lag_p50 is None or lag_p99 is None:
            raise ServerError("no saga ended during the 100/s phase")
        return (
            ok,
            {"p50": round(quantile(latencies, 0.5), 1), "p99": round(quantile(latencies, 0.99), 1)},
            {"p50": round(lag_p50 * 1000, 1), "p99": round(lag_p99 * 1000, 1)},
        )

    def _latencies(self, placed: list[PlacedOrder], give_up_at: float) -> list[float]:
        """Every accepted order's saga latency; one still running counts with the time it had
        been running when we stopped waiting (a lower bound, never left out)."""
        latencies = []
        for order in placed:
            if order.order_id is None:
                continue
            measured = self.ends.latency_ms(order)
            latencies.append(measured if measured is not None else (give_up_at - order.due) * 1e3)
        return latencies

    async def _load(
        self, client: httpx.AsyncClient, phase: str, rate: float, duration_s: float
    ) -> list[PlacedOrder]:
        assert self._bodies is not None
        self._phase, self._rate = phase, rate
        task = self.progress.add_task(f"{phase}: {rate:.0f} sagas/s", total=int(rate * duration_s))
        placed = await run_open_loop(
            client,
            self.services["order"],
            self._bodies,
            rate,
            duration_s,
            seed=len(self.steps) + 1,
            ends=self.ends,
            on_sent=lambda: self.progress.advance(task),
        )
        self.progress.remove_task(task)
        self._phase, self._rate = f"{phase} (drain)", 0.0
        return placed

    async def _step(
        self, client: httpx.AsyncClient, phase: str, rate: float, duration_s: float
    ) -> tuple[bool, list[float]]:
        """One open-loop step, judged by the sustainability criterion, then drained.
        Returns the verdict and every accepted saga's latency (ms)."""
        placed = await self._load(client, phase, rate, duration_s)
        grace_end = max(o.due for o in placed) + self.plan.criterion.grace_s
        await asyncio.sleep(max(0.0, grace_end - time.monotonic()))
        assert self._nc is not None
        backlogs = await consumer_backlogs(self._nc.jetstream())
        ended = sum(
            1
            for o in placed
            if o.order_id is not None and self.ends.ended.get(o.order_id, float("inf")) <= grace_end
        )
        await self._drain(placed)
        latencies = self._latencies(placed, give_up_at=time.monotonic())
        outcome = StepOutcome(
            rate_per_s=rate,
            duration_s=duration_s,
            sent=len(placed),
            failed=sum(1 for o in placed if o.failed),
            ended_in_grace=ended,
            p99_latency_ms=quantile(latencies, 0.99) if latencies else None,
            backlog_after_grace=backlogs,
            events_per_saga=EVENTS_PER_SAGA_PER_CONSUMER,
        )
        ok, why = verdict(outcome, self.plan.criterion)
        self.steps.append(
            {
                "phase": phase,
                "rate_per_s": rate,
                "sustainable": ok,
                "why": why,
                "p99_latency_ms": outcome.p99_latency_ms,
                "sent": outcome.sent,
                "failed": outcome.failed,
                "errors": dict(Counter(o.error for o in placed if o.error)),
                "ended_in_grace": ended,
            }
        )
        errors = self.steps[-1]["errors"]
        self.progress.console.log(f"{phase} {rate:g}/s: {why}" + (f" {errors}" if errors else ""))
        return ok, latencies

    async def _find_max(
        self,
        client: httpx.AsyncClient,
        phase: str,
        tried: dict[float, bool],
        start: float,
        steps: int,
    ) -> float:
        """Ramp (see ``sustainable.next_rate``) and return the highest sustainable rate
        tried, 0 if none held."""
        for _ in range(steps):
            rate = next_rate(tried, start)
            if rate is None:
                break
            tried[rate], _ = await self._step(client, phase, rate, self.plan.step_s)
        return max((r for r, ok in tried.items() if ok), default=0.0)

    async def _drain(self, placed: Sequence[PlacedOrder] = ()) -> None:
        """Wait until every saga of the step has ended and every consumer's backlog is empty,
        so one step's leftovers never count against the next; after ``drain_timeout_s`` the
        run goes on, and says so."""
        assert self._nc is not None
        task = self.progress.add_task("draining: messages left", total=None)
        deadline = time.monotonic() + self.plan.drain_timeout_s
        try:
            while time.monotonic() < deadline:
                left = sum((await consumer_backlogs(self._nc.jetstream())).values())
                running = sum(1 for o in placed if o.order_id and o.order_id not in self.ends.ended)
                self.progress.update(
                    task, description=f"draining: {running} sagas, {left} messages left"
                )
                if not left and not running:
                    return
                await asyncio.sleep(0.5)
            self.progress.console.log("drain timed out; the next step starts with a backlog")
        finally:
            self.progress.remove_task(task)

    # --- limits, peer, durability ---------------------------------------------------------

    def _admin_dsn(self) -> str:
        return postgres_admin_dsn(self.state)

    async def _limits(self) -> tuple[float, float]:
        self._phase = "limits"
        task = self.progress.add_task("machine limits: JetStream, PostgreSQL", total=2)
        publishes = await limits.jetstream_publishes_per_s(
            self.state["nats"], self.plan.limit_s, login=nats_admin_login(self.state)
        )
        self.progress.advance(task)
        commits = await limits.postgres_commits_per_s(self._admin_dsn(), self.plan.limit_s)
        self.progress.remove_task(task)
        return publishes, commits

    async def _peer(self) -> peer.PeerResult:
        self._phase = "peer"
        task = self.progress.add_task("peer: eventsourcing vs order event store", total=None)
        result = await peer.compare(self._admin_dsn(), 3 * self.plan.limit_s)
        self.progress.remove_task(task)
        return result

    async def _durability(self, client: httpx.AsyncClient, max_rate: float) -> float:
        """The maximum again with NATS fsyncing before every ack; the setting is restored
        afterwards."""
        task = self.progress.add_task("restarting NATS with sync_interval: always", total=None)
        await self._restart_nats(sync_always=True)
        self.progress.remove_task(task)
        try:
            start = max_rate if max_rate > 0 else BASE_RATE
            return await self._find_max(
                client, "sync always", {}, start, self.plan.durability_steps
            )
        finally:
            await self._restart_nats(sync_always=False)

    async def _restart_nats(self, *, sync_always: bool) -> None:
        await restart_nats(self._read_state, sync_always=sync_always)
        await self._connect()

    # --- the time series for the plot -----------------------------------------------------

    async def _monitor(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Once a second: sagas ended, their latency quantiles, and the order view's lag
        quantiles over that second (from its histogram)."""
        previous_lag: Buckets = []
        counted = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            fresh = self.ends.ended_in_order[counted:]
            counted += len(fresh)
            latencies = [
                (self.ends.ended[o] - self.ends.due[o]) * 1000 for o in fresh if o in self.ends.due
            ]
            lag: Buckets = []
            with contextlib.suppress(httpx.HTTPError):
                current = await lag_histogram(client, self.services["order-view"])
                lag, previous_lag = delta(current, previous_lag), current
            self.samples.append(
                RunSample(
                    t_s=round(time.monotonic() - self._started, 2),
                    completed_per_s=float(len(fresh)),
                    saga_latency_p50_ms=quantile(latencies, 0.5) if latencies else None,
                    saga_latency_p99_ms=quantile(latencies, 0.99) if latencies else None,
                    lag_p50_ms=_ms(histogram_quantile(0.5, lag)),
                    lag_p99_ms=_ms(histogram_quantile(0.99, lag)),
                )
            )


async def _quiet_reconnect_errors(exc: Exception) -> None:
    """The durability phase restarts NATS on purpose: its reconnect attempts are expected."""
    log.debug("NATS: %r", exc)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def run_bench(duration_s: float, attach: Path | None, plot: Path | None) -> BenchReport:
    """Run the benchmark against an attached stack, or against one started for it (and
    stopped afterwards)."""
    from rich.console import Console

    from polysaga_tools.stack import LocalStack, load_state

    plan = BenchPlan(duration_s)
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        if attach is not None:
            report = await Bench(lambda: load_state(attach), plan, progress).run()
        else:
            import shutil
            import tempfile

            data_dir = Path(tempfile.mkdtemp(prefix="polysaga-bench-"))
            stack = LocalStack(data_dir, data_dir / "stack.json")
            task = progress.add_task(f"starting a stack in {data_dir}", total=None)
            await stack.start()
            progress.remove_task(task)
            try:
                report = await Bench(stack.state, plan, progress).run()
            finally:
                await stack.stop()
                shutil.rmtree(data_dir, ignore_errors=True)
    if plot is not None:
        draw(report, plot)
    return report


def draw(report: BenchReport, path: Path) -> None:
    from polysaga_tools.plot import plot_run

    plot_run(report.samples, path, title=f"polysaga bench: max {report.max_sagas_per_s:g} sagas/s")


def print_report(report: BenchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="polysaga bench")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def rows(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                rows(f"{prefix}.{key}" if prefix else key, inner)
        else:
            table.add_row(prefix, str(value))

    rows("", report.as_json())
    table.add_row(
        "bound arithmetic",
        report.bound.arithmetic(report.postgres_commits_per_s, report.jetstream_publishes_per_s),
    )
    console = Console()
    console.print(table)
    for step in report.steps:
        console.print(f"{step['phase']} {step['rate_per_s']:g}/s: {step['why']}")
