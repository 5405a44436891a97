"""Run one service's real app in-process against real servers, and read back what it
published to JetStream (importable because pytest puts tests/ on the path).

The clients are the operator's: the service gets an operator token (unless its settings
name one) and every request carries it, so seeding routes answer; a test of refusal sends
``Authorization`` itself or uses ``operator=False``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import msgspec
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import SecretStr
from pymongo.asynchronous.collection import AsyncCollection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.app import create_app
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

Build = Callable[[ServiceSettings], ServiceDefinition]

TEST_OPERATOR_TOKEN = "operator-token-of-the-tests"


def with_operator_token(settings: ServiceSettings) -> ServiceSettings:
    if settings.operator_token is not None:
        return settings
    return settings.model_copy(update={"operator_token": SecretStr(TEST_OPERATOR_TOKEN)})


def operator_headers(settings: ServiceSettings) -> dict[str, str]:
    token = with_operator_token(settings).operator_token
    assert token is not None
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


@asynccontextmanager
async def service_client(
    build: Build, settings: ServiceSettings, *, operator: bool = True
) -> AsyncIterator[AsyncTestClient]:
    """The app with its lifespan (store, NATS, relay) running; requests go one at a time."""
    settings = with_operator_token(settings)
    async with AsyncTestClient(app=create_app(build(settings), settings)) as client:
        if operator:
            client.headers.update(operator_headers(settings))
        yield client


@asynccontextmanager
async def concurrent_client(
    build: Build, settings: ServiceSettings, *, operator: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The app running in the test's own event loop, so requests sent together really
    interleave (AsyncTestClient runs the app behind a portal, one request at a time)."""
    settings = with_operator_token(settings)
    app = create_app(build(settings), settings)
    transport = httpx.ASGITransport(app=cast(Any, app))
    headers = operator_headers(settings) if operator else {}
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://app", headers=headers) as client,
    ):
        yield client


async def published(
    js: JetStreamContext,
    stream: str,
    subjects: str,
    count: int,
    *,
    drained: Callable[[], Awaitable[bool]],
    timeout_s: float = 15.0,
) -> list[Msg]:
    """The stream's messages in stream order, once the service's outbox is ``drained`` (so
    nothing more is on its way) and the stream holds exactly ``count``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await drained() or (await js.stream_info(stream)).state.messages < count:
        assert loop.time() < deadline, f"{stream} did not reach {count} messages in time"
        await asyncio.sleep(0.05)
    assert (await js.stream_info(stream)).state.messages == count, f"{stream} has extra messages"
    if count == 0:
        return []
    sub = await js.pull_subscribe(subjects, stream=stream)
    msgs: list[Msg] = []
    try:
        while len(msgs) < count:
            msgs.extend(await sub.fetch(count - len(msgs), timeout=5))
    finally:
        await sub.unsubscribe()
    return msgs


def pg_outbox_drained(engine: AsyncEngine) -> Callable[[], Awaitable[bool]]:
    """No outbox row of this service's database is waiting for the relay."""

    async def drained() -> bool:
        async with engine.connect() as conn:
            pending = await conn.execute(
                text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
            return pending.scalar_one() == 0

    return drained


def mongo_outbox_drained(collection: AsyncCollection[Any]) -> Callable[[], Awaitable[bool]]:
    """No document of this collection has an event staged for the relay."""

    async def drained() -> bool:
        return await collection.count_documents({"outbox_pending": {"$gt": 0}}) == 0

    return drained


def body(msg: Msg) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(msg.data)
    return data


def event_name(msg: Msg) -> str:
    return (msg.headers or {})["ce-type"].removeprefix("io.polysaga.").rsplit(".v", 1)[0]
