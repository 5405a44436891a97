"""Gathering the delivery facts from a running stack: every message of every stream and of
the dead-letter stream (read through an ephemeral consumer), each PostgreSQL consumer's
inbox and outbox, the Mongo outboxes, what the order view applied, and the durable
consumers' state on the server.

The order view has no inbox (its writes are guarded by event id and per-source versions),
so what it applied is read from the view itself: an order's history map is keyed by event
id, and users and products carry the version of the last profile or name/price applied."""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec
import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from polysaga.events import declaration
from polysaga.events.decoding import MalformedEventError, UnsupportedVersionError, decode
from polysaga.mongo.client import connect as mongo_connect
from polysaga.mongo.outbox import PENDING_FIELD
from polysaga_tools.delivery import ConsumerState, DeliveryFacts, StreamEvent
from polysaga_tools.stack import nats_admin_login

_VIEW = "order-view"
UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def read_stream(js: JetStreamContext, stream: str, subjects: str) -> list[Msg]:
    """Every message a stream holds, in order, without touching any durable consumer."""
    last = (await js.stream_info(stream)).state.last_seq or 0
    if not last:
        return []
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60
    )
    sub = await js.pull_subscribe(subjects, stream=stream, config=config)
    messages: list[Msg] = []
    try:
        if (await sub.consumer_info()).num_pending == 0:
            return []  # nothing matches the filter
        # num_pending 0 on the last message: everything that matched has been delivered.
        while not messages or (
            messages[-1].metadata.num_pending > 0 and messages[-1].metadata.sequence.stream < last
        ):
            try:
                messages += await sub.fetch(500, timeout=5)
            except (NatsTimeoutError, TimeoutError):
                break  # the stream's tail was removed (limits); what is there was read
    finally:
        await sub.unsubscribe()
    return messages


def _stream_events(stream: str, messages: Sequence[Msg]) -> list[StreamEvent]:
    events = []
    for msg in messages:
        try:
            event = decode(msg.headers, msg.data, msg.subject)
        except (MalformedEventError, UnsupportedVersionError):
            continue  # never an event this code reads; the consumers dead-letter it
        data = msgspec.to_builtins(event.data)
        events.append(StreamEvent(stream, event.event_id, event.name, event.aggregate_id, data))
    return events


def _dead_letters(messages: Sequence[Msg]) -> set[tuple[str, str]]:
    found = set()
    prefix = f"{declaration.DEAD_LETTER_PREFIX}."
    for msg in messages:
        consumer = msg.subject.removeprefix(prefix).split(".", 1)[0]
        event_id = (msg.headers or {}).get("ce-id")
        if event_id:
            found.add((consumer, event_id))
    return found


async def consumer_states(js: JetStreamContext) -> dict[str, ConsumerState]:
    states = {}
    for service in sorted(declaration.services()):
        for context in declaration.consumed_by(service):
            info = await js.consumer_info(context.stream, service)
            states[f"{service} on {context.stream}"] = ConsumerState(
                info.num_pending or 0, info.num_ack_pending or 0
            )
    return states


async def _postgres_side(
    databases: dict[str, str],
) -> tuple[dict[str, set[str]], dict[str, int], dict[str, set[str]]]:
    handled: dict[str, set[str]] = {}
    pending: dict[str, int] = {}
    published: dict[str, set[str]] = {}
    for service, url in databases.items():
        conn = await asyncpg.connect(libpq(url))
        try:
            rows = await conn.fetch(
                "SELECT event_id::text AS id FROM inbox WHERE consumer = $1", service
            )
            handled[service] = {r["id"] for r in rows}
            pending[service] = await conn.fetchval(UNPUBLISHED)
            rows = await conn.fetch(
                "SELECT event_id::text AS id FROM outbox WHERE published_at IS NOT NULL"
            )
            published[service] = {r["id"] for r in rows}
        finally:
            await conn.close()
    return handled, pending, published


async def mongo_outbox_pending(url: str) -> int:
    client, db = mongo_connect(url)
    try:
        total = 0
        for name in await db.list_collection_names():
            async for doc in db[name].find({PENDING_FIELD: {"$gt": 0}}, {PENDING_FIELD: 1}):
                total += int(doc[PENDING_FIELD])
        return total
    finally:
        await client.close()


async def view_applied(url: str, events: Sequence[StreamEvent]) -> set[str]:
    """Ids of the events the order view's live generation reflects."""
    client, db = mongo_connect(url)
    try:
        pointer = await db["view_meta"].find_one({"_id": "active"})
        gen = int(pointer["generation"]) if pointer else 1
        history: dict[str, set[str]] = {}
        async for doc in db[f"summaries_g{gen}"].find({}, {"history": 1}):
            history[str(doc["_id"])] = set((doc.get("history") or {}).keys())
        users = {d["_id"]: d async for d in db[f"users_g{gen}"].find({})}
        products = {d["_id"]: d async for d in db[f"products_g{gen}"].find({})}
    finally:
        await client.close()

    def applied(event: StreamEvent) -> bool:
        data, name = event.data, event.name
        if event.stream in (declaration.USERS.stream, declaration.CATALOG.stream):
            version = int(data.get("version", 0))
            if event.stream == declaration.USERS.stream:
                return int(users.get(data.get("user_id"), {}).get("version", 0)) >= version
            product = products.get(data.get("sku"), {})
            fields = {
                "ProductCreated": ("name_version", "price_version"),
                "ProductRenamed": ("name_version",),
                "ProductPriceChanged": ("price_version",),
            }.get(name, ())
            return all(int(product.get(f, 0)) >= version for f in fields)
        # Saga events: the history map is keyed by event id (a UUID needs no escaping).
        return event.event_id in history.get(str(data.get("order_id", "")), set())

    return {e.event_id for e in events if _VIEW in _consumers_of(e) and applied(e)}


def _consumers_of(event: StreamEvent) -> frozenset[str]:
    try:
        return declaration.spec(event.name).consumers
    except declaration.UnknownEventError:
        return frozenset()


async def gather_delivery_facts(state: dict[str, Any]) -> DeliveryFacts:
    nc = await nats.connect(state["nats"], **nats_admin_login(state), max_reconnect_attempts=5)
    try:
        js = nc.jetstream()
        events: list[StreamEvent] = []
        for context in declaration.CONTEXTS:
            events += _stream_events(
                context.stream, await read_stream(js, context.stream, context.subjects)
            )
        dead_letters = await read_stream(
            js, declaration.DEAD_LETTER_STREAM, f"{declaration.DEAD_LETTER_PREFIX}.>"
        )
        dead = _dead_letters(dead_letters)
        consumers = await consumer_states(js)
    finally:
        await nc.close()
    handled, pending, published = await _postgres_side(state["postgres"]["databases"])
    mongo: dict[str, str] = state.get("mongo") or {}
    for service, url in mongo.items():
        pending[service] = await mongo_outbox_pending(url)
    if _VIEW in mongo:
        handled[_VIEW] = await view_applied(mongo[_VIEW], events)
    return DeliveryFacts(events, handled, dead, pending, published, consumers)


def mail_resends(maildir: str) -> int:
    """Mails delivered more than once (same Message-ID): the one window SMTP leaves open
    (accepted, then a crash before the commit), see notification.application."""
    box = mailbox.Maildir(maildir, create=False)
    ids = Counter(str(message["Message-ID"]) for message in box)
    return sum(n - 1 for n in ids.values() if n > 1)
