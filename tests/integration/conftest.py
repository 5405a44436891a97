"""Building blocks for integration tests: a migrated database with the shared outbox and
inbox tables plus a small effect table, and a JetStream context with the declared streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.messaging.connection import ensure_consumers, ensure_streams
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import Migration, create_engine, migrate
from polysaga_tools.servers import NatsServer

EFFECTS = Migration(
    "test",
    1,
    (
        "CREATE TABLE effects (event_id uuid NOT NULL, aggregate_id text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    ),
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    await migrate(engine, [*outbox.MIGRATIONS, *inbox.MIGRATIONS, EFFECTS])
    yield engine
    await engine.dispose()


@pytest.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


@pytest.fixture
async def js(nats_client: Client) -> JetStreamContext:
    context = nats_client.jetstream()
    await ensure_streams(context)
    # "inventory" consumes OrderPlaced and OrderCancelled from ORDERS in the declaration.
    await ensure_consumers(context, "inventory", ack_wait_s=30)
    return context
