"""Wires the orchestrator: its store adapter, migrations, reactions, the route and the
timeout sweep."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator import application
from orchestrator.adapters import MIGRATIONS, PostgresSagaStore
from orchestrator.domain import StepTimeouts
from orchestrator.http import PROBLEMS, ROUTES
from polysaga import metrics
from polysaga.events import declaration
from polysaga.events.envelope import Envelope
from polysaga.messaging.consumer import EventHandler
from polysaga.persistence import outbox
from polysaga.runtime import BackgroundLoop, ServiceDefinition, ServiceRuntime
from polysaga.schedule import run_periodically
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)

STATE_GAUGE_INTERVAL_S = 5.0
# After a start (a crash, a deploy), replies that arrived meanwhile are applied before any
# step is declared timed out; at most this long, since under load there is always more.
CATCH_UP_BEFORE_TIMEOUTS_S = 30.0


def step_timeouts(settings: ServiceSettings) -> StepTimeouts:
    return StepTimeouts(
        reserve_stock_s=settings.saga_reserve_stock_timeout_s,
        charge_payment_s=settings.saga_charge_payment_timeout_s,
        compensation_s=settings.saga_compensation_timeout_s,
        compensation_max_s=settings.saga_compensation_timeout_max_s,
    )


def _consume(reaction: application.Reaction, timeouts: StepTimeouts) -> EventHandler:
    async def handle(event: Envelope[Any], conn: AsyncConnection) -> None:
        messages = await reaction(event, PostgresSagaStore(conn), datetime.now(UTC), timeouts)
        await outbox.append(conn, messages)

    return handle


def timeout_sweeper(timeouts: StepTimeouts) -> BackgroundLoop:
    async def sweep_loop(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
        """Turns the sagas whose awaited step ran out of time."""
        await _caught_up(runtime, stop, CATCH_UP_BEFORE_TIMEOUTS_S)

        async def sweep() -> bool:
            sent = await application.sweep_timeouts(
                runtime.unit_of_work(), datetime.now(UTC), timeouts
            )
            return sent > 0  # a full batch may leave more behind

        await run_periodically(
            stop, runtime.settings.saga_timeout_sweep_interval_s, sweep, name="saga timeouts"
        )

    return sweep_loop


async def _caught_up(runtime: ServiceRuntime, stop: asyncio.Event, within_s: float) -> None:
    """Wait until every stream the orchestrator consumes has nothing left for it."""
    deadline = asyncio.get_running_loop().time() + within_s
    streams = [context.stream for context in declaration.consumed_by(runtime.definition.name)]
    while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
        try:
            infos = [await runtime.js.consumer_info(s, runtime.definition.name) for s in streams]
            if all(not i.num_pending and not i.num_ack_pending for i in infos):
                return
        except Exception:  # NATS not reachable yet: the timeouts can wait for it too
            log.debug("consumer info unavailable", exc_info=True)
        await asyncio.sleep(0.2)


async def state_gauges(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Exports the sagas per state from the table, right after restarts too."""

    async def refresh() -> None:
        for state, n in (await application.counts_by_state(runtime.unit_of_work())).items():
            metrics.ORCHESTRATED_SAGAS.labels(state=state).set(n)

    await run_periodically(stop, STATE_GAUGE_INTERVAL_S, refresh, name="saga state gauges")


def build(settings: ServiceSettings) -> ServiceDefinition:
    timeouts = step_timeouts(settings)
    return ServiceDefinition(
        name="orchestrator",
        migrations=MIGRATIONS,
        store_adapter=PostgresSagaStore,
        event_handlers={
            name: _consume(reaction, timeouts)
            for name, reaction in application.EVENT_HANDLERS.items()
        },
        route_handlers=ROUTES,
        problems=PROBLEMS,
        background_loops=[timeout_sweeper(timeouts), state_gauges],
    )
