"""What a running service holds: its database engine, its NATS connection, and the
background loops (outbox relay, one consumer per stream, pruner, service-specific ones).

Start-up applies the service's migrations and sets up streams and consumers from the event
declaration; shutdown stops the loops, drains NATS and closes the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polysaga.events import declaration
from polysaga.messaging.connection import connect, ensure_consumers, ensure_streams
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer, EventHandler
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import Migration, create_engine, migrate
from polysaga.persistence.pruning import run_pruner
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)

BackgroundLoop = Callable[["ServiceRuntime", asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything that makes a service itself; the rest is shared."""

    name: str
    migrations: Sequence[Migration]
    event_handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    route_handlers: Sequence[Any] = ()
    background_loops: Sequence[BackgroundLoop] = ()

    def all_migrations(self) -> list[Migration]:
        return [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *self.migrations]


class ServiceRuntime:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings.database_url, settings.db_pool_size)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "runtime not started"
        return self._js

    @property
    def nats(self) -> Client:
        assert self._nc is not None, "runtime not started"
        return self._nc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def start(self) -> None:
        s = self.settings
        await migrate(self.engine, self.definition.all_migrations())
        self._nc = await connect(
            s.nats_url, name=self.definition.name, user=s.nats_user, password=s.nats_password
        )
        self._js = self._nc.jetstream()
        await ensure_streams(self._js)
        await ensure_consumers(self._js, self.definition.name, ack_wait_s=s.ack_wait_s)
        self._spawn(self._relay_loop)
        self._spawn(self._pruner_loop)
        for consumer in self._consumers():
            self._spawn(lambda stop, c=consumer: c.run(stop))  # type: ignore[misc]
        for loop in self.definition.background_loops:
            self._spawn(lambda stop, f=loop: f(self, stop))  # type: ignore[misc]
        log.info("%s started", self.definition.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
        if self._nc is not None and self._nc.is_connected:
            await self._nc.drain()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": False, "nats": bool(self._nc and self._nc.is_connected)}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            log.warning("readiness: database unreachable", exc_info=True)
        return checks

    def _consumers(self) -> list[EventConsumer]:
        s = self.settings
        policy = ConsumerPolicy(
            max_deliveries=s.max_deliveries,
            backoff_s=s.redelivery_backoff_s,
            backoff_max_s=s.redelivery_backoff_max_s,
            ack_wait_s=s.ack_wait_s,
            fetch_batch=s.fetch_batch,
        )
        return [
            EventConsumer(
                service=self.definition.name,
                context=context,
                handlers=self.definition.event_handlers,
                engine=self.engine,
                js=self.js,
                policy=policy,
            )
            for context in declaration.consumed_by(self.definition.name)
        ]

    async def _relay_loop(self, stop: asyncio.Event) -> None:
        relay = outbox.OutboxRelay(
            self.engine,
            self.js,
            database_url=self.settings.database_url,
            batch=self.settings.relay_batch,
            poll_interval_s=self.settings.relay_poll_interval_s,
        )
        await relay.run(stop)

    async def _pruner_loop(self, stop: asyncio.Event) -> None:
        s = self.settings
        await run_pruner(
            self.engine,
            stop,
            interval_s=s.prune_interval_s,
            outbox_retention_s=s.outbox_retention_s,
            inbox_retention_s=s.inbox_retention_s,
        )

    def _spawn(self, loop: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        async def guarded() -> None:
            # A loop that dies is restarted: a background failure must not silently stop
            # publishing or consuming while the HTTP side still looks healthy.
            while not self._stop.is_set():
                try:
                    await loop(self._stop)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background loop crashed; restarting in 1 s")
                    await asyncio.sleep(1)

        self._tasks.append(asyncio.create_task(guarded()))
