"""What a running service holds: its own store (PostgreSQL, MongoDB or none), its NATS
connection, and the background loops (outbox relay, one consumer per stream it consumes,
pruner, service-specific ones).

Start-up opens the store (migrations or indexes) and sets up streams and consumers from
the event declaration; shutdown stops the loops, drains NATS and closes the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.events import declaration
from polysaga.messaging.connection import connect, ensure_consumers, ensure_streams
from polysaga.messaging.consumer import BatchRunner, ConsumerPolicy, EventConsumer, EventHandler
from polysaga.mongo.client import MongoDatabase
from polysaga.mongo.unit_of_work import MongoUnitOfWork
from polysaga.persistence.database import Migration
from polysaga.persistence.unit_of_work import PostgresUnitOfWork
from polysaga.problems import ProblemMap
from polysaga.settings import ServiceSettings
from polysaga.stores import MongoStore, NoStore, PostgresStore, Store
from polysaga.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BackgroundLoop = Callable[["ServiceRuntime", asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything that makes a service itself; the rest is shared."""

    name: str
    store: Literal["postgres", "mongo", "none"] = "postgres"
    migrations: Sequence[Migration] = ()  # PostgreSQL
    outbox_collections: Sequence[str] = ()  # MongoDB: collections with an embedded outbox
    mongo_setup: Callable[[MongoDatabase], Awaitable[None]] | None = None  # MongoDB indexes
    # MongoDB: False when every handler is a version-guarded conditional write (projections).
    mongo_inbox: bool = True
    # The service's store adapter over a connection in a transaction (PostgreSQL) or over the
    # database (MongoDB): what ``ServiceRuntime.unit_of_work`` hands commands and queries.
    store_adapter: Callable[[Any], Any] | None = None
    # Domain errors a route may let through, and the problem each one is (``polysaga.problems``).
    problems: ProblemMap = field(default_factory=dict)
    event_handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    route_handlers: Sequence[Any] = ()
    background_loops: Sequence[BackgroundLoop] = ()
    uses_nats: bool = True
    # Handle each fetched batch in one transaction (with a fallback to one message at a
    # time). False where a handler has an effect outside the store that a sibling's failure
    # would repeat (notification's mail).
    batch_transactions: bool = True
    # A Mongo-backed service's own batch runner, given the store's database (the order view
    # coalesces a batch's writes).
    mongo_batch_runner: Callable[[MongoDatabase], BatchRunner] | None = None


def _make_store(definition: ServiceDefinition, settings: ServiceSettings) -> Store:
    if definition.store == "postgres":
        return PostgresStore(settings, definition.migrations)
    if definition.store == "mongo":
        return MongoStore(
            settings, definition.outbox_collections, definition.mongo_setup, definition.mongo_inbox
        )
    return NoStore()


class ServiceRuntime:
    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.store = _make_store(definition, settings)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- what routes and loops use ------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        assert isinstance(self.store, PostgresStore), f"{self.definition.name} has no PostgreSQL"
        return self.store.engine

    @property
    def mongo(self) -> MongoDatabase:
        assert isinstance(self.store, MongoStore), f"{self.definition.name} has no MongoDB"
        return self.store.db

    @property
    def mongo_reader(self) -> MongoDatabase:
        """For queries only: never write through it (see MongoStore)."""
        assert isinstance(self.store, MongoStore), f"{self.definition.name} has no MongoDB"
        return self.store.reader

    def unit_of_work(self) -> UnitOfWork[Any]:
        """A new unit of work over the service's store, for one command or query."""
        adapter = self.definition.store_adapter
        assert adapter is not None, f"{self.definition.name} declares no store adapter"
        if isinstance(self.store, PostgresStore):
            return PostgresUnitOfWork(self.store.engine, adapter)
        if isinstance(self.store, MongoStore):
            return MongoUnitOfWork(self.store.db, adapter, on_commit=self.store.wake_relay)
        raise AssertionError(f"{self.definition.name} has no store")

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "runtime not started"
        return self._js

    @property
    def nats(self) -> Client:
        assert self._nc is not None, "runtime not started"
        return self._nc

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        await self.store.open()
        if self.definition.uses_nats:
            password = s.nats_password.get_secret_value() if s.nats_password else None
            self._nc = await connect(
                s.nats_url, name=self.definition.name, user=s.nats_user, password=password
            )
            self._js = self._nc.jetstream()
            await ensure_streams(self._js, self.definition.name, replicas=s.stream_replicas)
            await ensure_consumers(self._js, self.definition.name, ack_wait_s=s.ack_wait_s)
            for store_loop in self.store.loops(self._js):
                self._spawn(store_loop)
            for consumer in self._consumers():
                self._spawn(consumer.run)
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
        await self.store.close()

    async def readiness(self) -> dict[str, bool]:
        checks = {"store": await self.store.ready()}
        if self.definition.uses_nats:
            checks["nats"] = bool(self._nc and self._nc.is_connected)
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
        runner = self.store.runner()
        batch_runner: BatchRunner | None = None
        if self.definition.mongo_batch_runner is not None:
            batch_runner = self.definition.mongo_batch_runner(self.mongo)
        elif self.definition.batch_transactions:
            batch_runner = self.store.batch_runner()
        return [
            EventConsumer(
                service=self.definition.name,
                context=context,
                handlers=self.definition.event_handlers,
                runner=runner,
                js=self.js,
                policy=policy,
                store_unavailable=self.store.unavailable,
                batch_runner=batch_runner,
            )
            for context in declaration.consumed_by(self.definition.name)
        ]

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
