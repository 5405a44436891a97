"""A service's own store, behind one small interface the runtime drives: PostgreSQL (outbox
table, transactional inbox) or MongoDB (document-embedded outbox, inbox with idempotent
effects). Each store knows its readiness check, its handler runner and its loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.messaging.consumer import BatchRunner, HandlerRunner
from polysaga.mongo import inbox as mongo_inbox
from polysaga.mongo.client import MongoDatabase, connect
from polysaga.mongo.client import is_unavailable as mongo_unavailable
from polysaga.mongo.outbox import EmbeddedOutboxRelay
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import Migration, create_engine, is_unavailable, migrate
from polysaga.persistence.pruning import run_pruner
from polysaga.schedule import run_periodically
from polysaga.settings import ServiceSettings

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]


class Store(Protocol):
    async def open(self) -> None: ...
    async def ready(self) -> bool: ...
    def runner(self) -> HandlerRunner: ...
    def batch_runner(self) -> BatchRunner | None: ...
    def unavailable(self, exc: BaseException) -> bool: ...
    def loops(self, js: JetStreamContext) -> list[Loop]: ...
    async def close(self) -> None: ...


class PostgresStore:
    def __init__(self, settings: ServiceSettings, migrations: Sequence[Migration]) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(
            settings.database_url.get_secret_value(), settings.db_pool_size
        )
        self._migrations = [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *migrations]

    async def open(self) -> None:
        await migrate(self.engine, self._migrations)

    async def ready(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("readiness: database unreachable", exc_info=True)
            return False

    def runner(self) -> HandlerRunner:
        return inbox.transactional_runner(self.engine)

    def batch_runner(self) -> BatchRunner | None:
        return inbox.transactional_batch_runner(self.engine)

    def unavailable(self, exc: BaseException) -> bool:
        return is_unavailable(exc)

    def loops(self, js: JetStreamContext) -> list[Loop]:
        s = self.settings
        relay = outbox.OutboxRelay(
            js,
            database_url=s.database_url.get_secret_value(),
            batch=s.relay_batch,
            poll_interval_s=s.relay_poll_interval_s,
        )

        async def prune(stop: asyncio.Event) -> None:
            await run_pruner(
                self.engine,
                stop,
                interval_s=s.prune_interval_s,
                outbox_retention_s=s.outbox_retention_s,
                inbox_retention_s=s.inbox_retention_s,
            )

        return [relay.run, prune]

    async def close(self) -> None:
        await self.engine.dispose()


class MongoStore:
    def __init__(
        self,
        settings: ServiceSettings,
        outbox_collections: Sequence[str],
        setup: Callable[[MongoDatabase], Awaitable[None]] | None,
        use_inbox: bool = True,
    ) -> None:
        self.settings = settings
        # One connection for every write of this process, whatever the URL says: FerretDB v1
        # applies an update as read-modify-write, so two connections updating one document
        # at once lose one update (tests/integration/test_mongo_single_writer.py).
        self.client, self.db = connect(settings.mongo_url.get_secret_value(), pool_size=1)
        # Reads go through their own connections, so a query never queues behind the
        # consumers' writes (which FerretDB needs serialised on one connection).
        self.reader_client, self.reader = connect(
            settings.mongo_url.get_secret_value(), pool_size=4
        )
        self._outbox_collections = outbox_collections
        self._setup = setup
        self._use_inbox = use_inbox
        self._relay: EmbeddedOutboxRelay | None = None

    async def open(self) -> None:
        await mongo_inbox.ensure_indexes(self.db[mongo_inbox.INBOX_COLLECTION])
        if self._setup is not None:
            await self._setup(self.db)

    async def ready(self) -> bool:
        try:
            await self.db.command("ping")
            return True
        except Exception:
            log.warning("readiness: MongoDB unreachable", exc_info=True)
            return False

    def runner(self) -> HandlerRunner:
        return mongo_inbox.inbox_runner(self.db, use_inbox=self._use_inbox)

    def batch_runner(self) -> BatchRunner | None:
        return None  # no multi-document transactions; a service may coalesce its own writes

    def unavailable(self, exc: BaseException) -> bool:
        return mongo_unavailable(exc)

    def wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()

    def loops(self, js: JetStreamContext) -> list[Loop]:
        s = self.settings
        loops: list[Loop] = []
        if self._outbox_collections:
            self._relay = EmbeddedOutboxRelay(
                [self.db[name] for name in self._outbox_collections],
                js,
                poll_interval_s=s.relay_poll_interval_s,
            )
            loops.append(self._relay.run)

        async def prune_inbox() -> None:
            await mongo_inbox.prune(self.db[mongo_inbox.INBOX_COLLECTION], s.inbox_retention_s)

        async def prune(stop: asyncio.Event) -> None:
            await run_periodically(stop, s.prune_interval_s, prune_inbox, name="inbox pruning")

        loops.append(prune)
        return loops

    async def close(self) -> None:
        await self.client.close()
        await self.reader_client.close()


class NoStore:
    """For a stateless service (the gateway)."""

    async def open(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    def runner(self) -> HandlerRunner:
        raise RuntimeError("a service without a store consumes no events")

    def batch_runner(self) -> BatchRunner | None:
        return None

    def unavailable(self, exc: BaseException) -> bool:
        return False

    def loops(self, js: JetStreamContext) -> list[Loop]:
        return []

    async def close(self) -> None:
        return None
