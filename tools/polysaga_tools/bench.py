"""``polysaga bench``: sagas per second, saga latency, consistency lag and where the time
goes (per hop, per process) under open-loop load, beside this machine's own limits
(JetStream publishes, PostgreSQL commits, MongoDB-wire writes), the bound they put on the
rate given what one saga was measured to cost, a peer (the same saga as a DBOS workflow),
and the cost of NATS ``sync_interval: always`` - all in one run, on one stack. Each saga
style the stack offers is measured the same way. Method and figures: BENCHMARKS.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import nats
from nats.aio.client import Client
from rich.progress import Progress

from polysaga.events import declaration
from polysaga_tools import limits, peer
from polysaga_tools.bench_cpu import cpu_seconds, per_saga_ms
from polysaga_tools.bench_load import (
    ClosedLoopResult,
    PlacedOrder,
    SagaEnds,
    run_closed_loop,
    run_open_loop,
)
from polysaga_tools.bench_probes import (
    RELAY_COMMITS,
    VIEW_WRITES,
    MetricsSnapshot,
    PeakRss,
    consumer_backlogs,
    lag_histogram,
    metrics_snapshot,
)
from polysaga_tools.bench_styles import STYLES, SagaStyle
from polysaga_tools.demo import _register_users, _seed
from polysaga_tools.histograms import Buckets, delta
from polysaga_tools.histograms import quantile as histogram_quantile
from polysaga_tools.invariants import Baseline
from polysaga_tools.limits import SagaBound
from polysaga_tools.nats_sync import restart_nats
from polysaga_tools.plot import RunSample
from polysaga_tools.quantiles import quantile
from polysaga_tools.servers import ServerError
from polysaga_tools.stack import APP_SERVICES, nats_admin_login, postgres_admin_dsn
from polysaga_tools.stack_access import stack_client
from polysaga_tools.sustainable import Criterion, StepOutcome, next_rate, verdict

log = logging.getLogger(__name__)

T = TypeVar("T")

BASE_RATE = 100.0
LOW_RATE = 10.0
# The most one durable consumer gets from one saga's stream: order-view on ORDERS (placed,
# paid, confirmed).
EVENTS_PER_SAGA_PER_CONSUMER = 3
CLOSED_LOOP_ORDERS = 400
CLOSED_LOOP_CONCURRENCY = 32
# pg_stat_database hears of a backend's commits when it goes idle, within about 10 s.
STATS_SETTLE_S = 11.0


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
    def low_phase_s(self) -> float:
        return max(10.0, 0.25 * self.duration_s)

    @property
    def base_phase_s(self) -> float:
        return max(5.0, 0.2 * self.duration_s)

    @property
    def step_s(self) -> float:
        return max(3.0, 0.08 * self.duration_s)

    @property
    def closed_loop_orders(self) -> int:
        return max(64, round(CLOSED_LOOP_ORDERS * min(1.0, self.duration_s / 60)))

    # A step must start on an empty system, else it measures the last one's leftovers: wait
    # this long for every backlog to empty (a saturated order view can take minutes).
    drain_timeout_s: float = 600.0


def _p50_p99(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(quantile(values, 0.5), 1), "p99": round(quantile(values, 0.99), 1)}


@dataclass
class PhaseFigures:
    """One open-loop phase at a fixed rate."""

    rate_per_s: float
    sustainable: bool
    why: str
    saga_latency_ms: dict[str, float]
    consistency_lag_ms: dict[str, float | None]
    hops_ms: dict[str, dict[str, float | None]]
    hops_ms_by_service: dict[str, dict[str, dict[str, float | None]]]

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate_per_s,
            "sustainable": self.sustainable,
            "saga_latency_ms": self.saga_latency_ms,
            "consistency_lag_ms": self.consistency_lag_ms,
            "hops_ms": self.hops_ms,
            "hops_ms_by_service": self.hops_ms_by_service,
        }


@dataclass
class MeasuredPhase:
    """A fixed-rate phase with what it cost: CPU per process and the servers' work per
    saga, from its start to when everything had settled."""

    figures: PhaseFigures
    sagas: int
    cpu_ms_per_saga: dict[str, float]
    costs: limits.SagaCosts

    def as_json(self) -> dict[str, Any]:
        return {
            **self.figures.as_json(),
            "sagas": self.sagas,
            "cpu_ms_per_saga": self.cpu_ms_per_saga,
            "cpu_ms_per_saga_total": round(sum(self.cpu_ms_per_saga.values()), 2),
            "costs_per_saga": {
                "postgres_commits": round(self.costs.commits, 2),
                "postgres_write_transactions": round(self.costs.write_transactions, 2),
                "relay_commits": round(self.costs.relay_commits, 2),
                "jetstream_messages": round(self.costs.publishes, 2),
                "view_writes": round(self.costs.view_writes, 2),
            },
        }


@dataclass
class StyleReport:
    """Every figure of one saga style."""

    style: str
    at_10_per_s: MeasuredPhase
    at_100_per_s: MeasuredPhase
    max_sagas_per_s: float
    at_max: MeasuredPhase | None
    closed_loop: ClosedLoopResult

    @property
    def costed(self) -> MeasuredPhase:
        """The phase the bound's costs come from: the maximum's, else the 10/s phase's."""
        return self.at_max or self.at_10_per_s

    def as_json(self) -> dict[str, Any]:
        return {
            "max_sagas_per_s": self.max_sagas_per_s,
            "at_10_per_s": self.at_10_per_s.as_json(),
            "at_100_per_s": self.at_100_per_s.as_json(),
            "at_max": self.at_max.as_json() if self.at_max else None,
            "closed_loop": {
                "orders": self.closed_loop.orders,
                "concurrency": self.closed_loop.concurrency,
                "sagas_per_s": self.closed_loop.sagas_per_s,
            },
        }


@dataclass
class BenchReport:
    styles: dict[str, StyleReport]
    limits: limits.MachineLimits
    dbos: dict[str, Any]
    appends: peer.PeerResult
    rss_mb: dict[str, float]
    sync_always_max_sagas_per_s: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    samples: list[RunSample] = field(default_factory=list)

    @property
    def primary(self) -> StyleReport:
        return next(iter(self.styles.values()))

    @property
    def max_sagas_per_s(self) -> float:
        return self.primary.max_sagas_per_s

    def bound(self) -> SagaBound:
        return limits.saga_bound(self.primary.costed.costs, self.limits)

    def as_json(self) -> dict[str, Any]:
        primary = self.primary
        bound = self.bound()
        bound_rate = round(bound.sagas_per_s, 1)
        cpu_total = sum(primary.costed.cpu_ms_per_saga.values())
        ours_p99 = primary.at_10_per_s.figures.saga_latency_ms["p99"]
        dbos_rate = float(self.dbos["closed_loop_sagas_per_s"])
        max_rate = primary.max_sagas_per_s
        return {
            **primary.as_json(),
            "limits": {
                "jetstream_publishes_per_s": round(self.limits.jetstream_publishes_per_s, 1),
                "postgres_commits_per_s": round(self.limits.postgres_commits_per_s, 1),
                "mongo_writes_per_s": round(self.limits.mongo_writes_per_s, 1),
                "mongo_writes_per_s_4_connections": round(
                    self.limits.mongo_writes_per_s_4_connections, 1
                ),
            },
            "bound": {
                "costs_from": "at_max" if primary.at_max else "at_10_per_s",
                "by_postgres_commits": _rounded(bound.by_commits),
                "by_jetstream_publishes": _rounded(bound.by_publishes),
                "by_mongo_writes": _rounded(bound.by_view_writes),
                "limited_by": bound.limited_by,
                "cpu_bound_sagas_per_s": _rounded(
                    (os.cpu_count() or 1) * 1000 / cpu_total if cpu_total else None
                ),
            },
            "bound_sagas_per_s": bound_rate,
            "ratio_to_bound": round(max_rate / bound_rate, 6) if bound_rate else None,
            "peer": {
                "dbos": self.dbos,
                "closed_loop_ratio": round(primary.closed_loop.sagas_per_s / dbos_rate, 3)
                if dbos_rate
                else None,
                "low_load_p99_ms": {
                    "polysaga": ours_p99,
                    "dbos": self.dbos["at_rate"]["saga_latency_ms"]["p99"],
                },
                "eventsourcing_appends": {
                    "eventsourcing_appends_per_s": round(
                        self.appends.eventsourcing_appends_per_s, 1
                    ),
                    "polysaga_appends_per_s": round(self.appends.polysaga_appends_per_s, 1),
                    "ratio": round(self.appends.ratio, 3),
                },
            },
            "rss_mb": self.rss_mb,
            "durability": {
                "sync_always_max_sagas_per_s": self.sync_always_max_sagas_per_s,
                "cost_percent": round(100 * (1 - self.sync_always_max_sagas_per_s / max_rate), 1)
                if max_rate
                else None,
            },
            "styles": {name: report.as_json() for name, report in self.styles.items()},
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


StateReader = Callable[[], dict[str, Any]]


@dataclass
class _Step:
    ok: bool
    why: str
    placed: list[PlacedOrder]
    latencies: list[float]
    lag: Buckets
    metrics: MetricsSnapshot


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

    def _all_pids(self) -> dict[str, int | None]:
        """Every process the stack runs (services, servers, the SMTP sink)."""
        return dict(self._read_state().get("processes", {}))

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
                styles = {s.name: await self._style(client, s) for s in STYLES}
                machine = await self._limits()
                dbos = await self._dbos()
                appends = await self._appends()
                primary = next(iter(styles.values()))
                sync_always = await self._durability(client, primary.max_sagas_per_s)
            finally:
                stop.set()
                await asyncio.gather(monitor, rss)
                if self._nc is not None:
                    await self._nc.close()
        return BenchReport(
            styles=styles,
            limits=machine,
            dbos=dbos,
            appends=appends,
            rss_mb=self.rss.megabytes(),
            sync_always_max_sagas_per_s=sync_always,
            steps=self.steps,
            samples=self.samples,
        )

    async def one_phase(self, rate: float, duration_s: float) -> MeasuredPhase:
        """Seed, then one measured phase at ``rate`` for ``duration_s`` (``--rate``)."""
        limits_http = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with stack_client(self.state, timeout=30, limits=limits_http) as client:
            await self._connect()
            try:
                await self._seed(client)
                style = STYLES[0]
                return await self._measured_phase(
                    client, style, f"{style.name} at {rate:g}/s", rate, duration_s
                )
            finally:
                if self._nc is not None:
                    await self._nc.close()

    async def _style(self, client: httpx.AsyncClient, style: SagaStyle) -> StyleReport:
        """Every load phase for one saga style."""
        low = await self._measured_phase(
            client, style, f"{style.name} at 10/s", LOW_RATE, self.plan.low_phase_s
        )
        base = await self._measured_phase(
            client, style, f"{style.name} at 100/s", BASE_RATE, self.plan.base_phase_s
        )
        max_rate = await self._find_max(
            client,
            style,
            f"{style.name} ramp",
            {BASE_RATE: base.figures.sustainable, LOW_RATE: low.figures.sustainable},
            BASE_RATE,
            self.plan.max_steps,
        )
        at_max = (
            await self._measured_phase(
                client, style, f"{style.name} at max", max_rate, self.plan.step_s
            )
            if max_rate > 0
            else None
        )
        closed = await self._closed_loop(client, style)
        return StyleReport(style.name, low, base, max_rate, at_max, closed)

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

    def _phase_figures(self, rate: float, step: _Step) -> PhaseFigures:
        if not step.latencies:
            raise ServerError(f"no saga ended at {rate:g}/s")
        lag_p50, lag_p99 = histogram_quantile(0.5, step.lag), histogram_quantile(0.99, step.lag)
        return PhaseFigures(
            rate_per_s=rate,
            sustainable=step.ok,
            why=step.why,
            saga_latency_ms=_p50_p99(step.latencies),
            consistency_lag_ms={"p50": _ms(lag_p50), "p99": _ms(lag_p99)},
            hops_ms=step.metrics.hop_quantiles_ms(),
            hops_ms_by_service=step.metrics.hop_quantiles_ms_by_service(),
        )

    async def _measured_phase(
        self,
        client: httpx.AsyncClient,
        style: SagaStyle,
        phase: str,
        rate: float,
        duration_s: float,
    ) -> MeasuredPhase:
        """One fixed-rate step, measuring CPU per process, commits per database, messages
        stored and the view's writes from its start to when everything had settled."""
        assert self._nc is not None
        js = self._nc.jetstream()
        admin = self._admin_dsn()
        streams = [c.stream for c in declaration.CONTEXTS] + [declaration.DEAD_LETTER_STREAM]
        cpu_before = cpu_seconds(self._all_pids())
        commits_before = await limits.commits_by_database(admin)
        xids_before = await limits.transaction_ids_assigned(admin)
        messages_before = await limits.stream_messages(js, streams)
        step = await self._step(client, style, phase, rate, duration_s)
        last_arrival = max(o.due for o in step.placed)
        await asyncio.sleep(max(0.0, last_arrival + STATS_SETTLE_S - time.monotonic()))
        cpu_after = cpu_seconds(self._all_pids())
        commits_after = await limits.commits_by_database(admin)
        xids_after = await limits.transaction_ids_assigned(admin)
        messages_after = await limits.stream_messages(js, streams)
        sagas = sum(1 for o in step.placed if o.order_id is not None)
        ours = set(self.state["postgres"].get("databases", {}).values())
        service_databases = {_database_of(url) for url in ours} | {
            _database_of(url) for url in self.state.get("mongo", {}).values()
        }
        commits = sum(
            commits_after.get(db, 0) - commits_before.get(db, 0) for db in service_databases
        )
        per = max(sagas, 1)
        costs = limits.SagaCosts(
            commits=commits / per,
            write_transactions=(xids_after - xids_before) / per,
            relay_commits=step.metrics.counters.get(RELAY_COMMITS, 0.0) / per,
            publishes=(messages_after - messages_before) / per,
            view_writes=step.metrics.counters.get(VIEW_WRITES, 0.0) / per,
        )
        return MeasuredPhase(
            self._phase_figures(rate, step), sagas, per_saga_ms(cpu_before, cpu_after, sagas), costs
        )

    async def _closed_loop(self, client: httpx.AsyncClient, style: SagaStyle) -> ClosedLoopResult:
        """A fixed population of clients, each waiting for its saga before the next order:
        the way the peer is measured."""
        assert self._bodies is not None
        bodies = self._bodies
        orders = self.plan.closed_loop_orders
        self._phase, self._rate = f"{style.name} closed loop", 0.0
        task = self.progress.add_task(
            f"{style.name}: closed loop, {orders} orders x {CLOSED_LOOP_CONCURRENCY}", total=None
        )
        result = await run_closed_loop(
            client,
            self.services["order"],
            lambda rng: style.body(bodies(rng)),
            orders,
            CLOSED_LOOP_CONCURRENCY,
            self.ends,
        )
        self.progress.remove_task(task)
        self.progress.console.log(
            f"{style.name} closed loop: {result.sagas_per_s:g} sagas/s ({result.failed} failed)"
        )
        await self._drain()
        return result

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
        self,
        client: httpx.AsyncClient,
        style: SagaStyle,
        phase: str,
        rate: float,
        duration_s: float,
    ) -> list[PlacedOrder]:
        assert self._bodies is not None
        bodies = self._bodies
        self._phase, self._rate = phase, rate
        task = self.progress.add_task(f"{phase}: {rate:.0f} sagas/s", total=int(rate * duration_s))
        placed = await run_open_loop(
            client,
            self.services["order"],
            lambda rng: style.body(bodies(rng)),
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
        self,
        client: httpx.AsyncClient,
        style: SagaStyle,
        phase: str,
        rate: float,
        duration_s: float,
    ) -> _Step:
        """One open-loop step, judged by the sustainability criterion, then drained."""
        lag_before = await lag_histogram(client, self.services["order-view"])
        metrics_before = await metrics_snapshot(client, self.services)
        placed = await self._load(client, style, phase, rate, duration_s)
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
        lag = delta(await lag_histogram(client, self.services["order-view"]), lag_before)
        measured = (await metrics_snapshot(client, self.services)).since(metrics_before)
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
        return _Step(ok, why, placed, latencies, lag, measured)

    async def _find_max(
        self,
        client: httpx.AsyncClient,
        style: SagaStyle,
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
            tried[rate] = (await self._step(client, style, phase, rate, self.plan.step_s)).ok
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

    # --- limits, peers, durability --------------------------------------------------------

    def _admin_dsn(self) -> str:
        return postgres_admin_dsn(self.state)

    async def _limits(self) -> limits.MachineLimits:
        self._phase = "limits"
        task = self.progress.add_task("machine limits: JetStream, PostgreSQL, MongoDB", total=4)
        publishes = await limits.jetstream_publishes_per_s(
            self.state["nats"], self.plan.limit_s, login=nats_admin_login(self.state)
        )
        self.progress.advance(task)
        commits = await limits.postgres_commits_per_s(self._admin_dsn(), self.plan.limit_s)
        self.progress.advance(task)
        view_url = self.state["mongo"]["order-view"]
        mongo_one = await limits.mongo_writes_per_s(view_url, self.plan.limit_s, connections=1)
        self.progress.advance(task)
        mongo_four = await limits.mongo_writes_per_s(view_url, self.plan.limit_s, connections=4)
        self.progress.remove_task(task)
        return limits.MachineLimits(publishes, commits, mongo_one, mongo_four)

    async def _dbos(self) -> dict[str, Any]:
        self._phase = "peer"
        task = self.progress.add_task("peer: the saga as a DBOS workflow", total=None)
        figures = await peer.dbos_saga(
            self._admin_dsn(),
            closed_orders=self.plan.closed_loop_orders,
            concurrency=CLOSED_LOOP_CONCURRENCY,
            rate_per_s=LOW_RATE,
            seconds=self.plan.low_phase_s,
        )
        self.progress.remove_task(task)
        return figures

    async def _appends(self) -> peer.PeerResult:
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
                client, STYLES[0], "sync always", {}, start, self.plan.durability_steps
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


def _database_of(url: str) -> str:
    """The database a service URL names (its path, without options)."""
    return urlsplit(url).path.lstrip("/")


async def run_one_phase(rate: float, duration_s: float, attach: Path | None) -> MeasuredPhase:
    """One measured phase at ``rate`` (the first saga style), on a stack of its own or an
    attached one: to see what one change does to CPU and costs per saga."""
    return await _on_a_stack(
        attach, lambda bench: bench.one_phase(rate, duration_s), BenchPlan(max(duration_s, 10))
    )


async def _on_a_stack(
    attach: Path | None, work: Callable[[Bench], Awaitable[T]], plan: BenchPlan
) -> T:
    from rich.console import Console

    from polysaga_tools.stack import LocalStack, load_state

    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        if attach is not None:
            return await work(Bench(lambda: load_state(attach), plan, progress))
        import shutil
        import tempfile

        data_dir = Path(tempfile.mkdtemp(prefix="polysaga-bench-"))
        stack = LocalStack(data_dir, data_dir / "stack.json")
        task = progress.add_task(f"starting a stack in {data_dir}", total=None)
        await stack.start()
        progress.remove_task(task)
        try:
            return await work(Bench(stack.state, plan, progress))
        finally:
            await stack.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


async def run_bench(duration_s: float, attach: Path | None, plot: Path | None) -> BenchReport:
    """Run the benchmark against an attached stack, or against one started for it (and
    stopped afterwards)."""
    report = await _on_a_stack(attach, lambda bench: bench.run(), BenchPlan(duration_s))
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
    bound = report.bound()
    table.add_row("bound arithmetic", bound.arithmetic(report.primary.costed.costs, report.limits))
    console = Console()
    console.print(table)
    for step in report.steps:
        console.print(f"{step['phase']} {step['rate_per_s']:g}/s: {step['why']}")
