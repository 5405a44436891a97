"""Trace context through the outbox, on real PostgreSQL, FerretDB and NATS: the row (or the
document's outbox entry) keeps the writer's context, the relay's publish span is its child,
the message carries the publish span's context and the consumer's process span continues
it; the order service's deadline sweeper continues the placing request's trace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from event_samples import order_placed
from harness import record_effect
from order import application
from order.adapters import MIGRATIONS as ORDER_MIGRATIONS
from order.adapters import PostgresOrderStore as OrderStore
from polysaga import tracing
from polysaga.events.declaration import ORDERS
from polysaga.events.envelope import Envelope, new_event
from polysaga.messaging.consumer import ConsumerPolicy, EventConsumer
from polysaga.mongo import outbox as mongo_outbox
from polysaga.mongo.client import connect as mongo_connect
from polysaga.persistence import outbox
from polysaga.persistence.database import migrate
from polysaga.persistence.inbox import transactional_runner
from polysaga.persistence.unit_of_work import PostgresUnitOfWork
from polysaga.settings import ServiceSettings


class Spans:
    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter
        self.tracer = provider.get_tracer("test")

    def finished(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        (span,) = [s for s in self.finished() if s.name == name]
        return span


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Tracing on, into memory; set up before any client so that databases are traced."""
    exporter = InMemorySpanExporter()
    provider = tracing.configure("inventory", ServiceSettings(), exporter=exporter)
    assert provider is not None
    try:
        yield Spans(provider, exporter)
    finally:
        tracing.shutdown()


@pytest.fixture
async def traced_engine(spans: Spans, engine: AsyncEngine) -> AsyncEngine:
    """The shared test engine, created once tracing is on (so its statements are traced)."""
    await migrate(engine, ORDER_MIGRATIONS)
    return engine


def placed(order_id: str) -> Envelope[Any]:
    return new_event(order_placed(order_id=uuid.UUID(order_id)))


def ids(traceparent: str) -> tuple[int, int]:
    """(trace id, parent span id) of a W3C traceparent header."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


async def consume_one(engine: AsyncEngine, js: JetStreamContext) -> dict[str, str]:
    """Fetch the next ORDERS message for "inventory", process it, return its headers."""
    consumer = EventConsumer(
        service="inventory",
        context=ORDERS,
        handlers={"OrderPlaced": record_effect},
        runner=transactional_runner(engine),
        js=js,
        policy=ConsumerPolicy(),
    )
    sub = await js.pull_subscribe_bind(durable="inventory", stream="ORDERS")
    (msg,) = await sub.fetch(1, timeout=5)
    await consumer.process_batch([msg])
    await sub.unsubscribe()
    return dict(msg.headers or {})


async def test_the_outbox_row_keeps_the_writers_context_and_the_saga_continues_it(
    spans: Spans, traced_engine: AsyncEngine, js: JetStreamContext
) -> None:
    order_id = str(uuid.uuid4())
    event = placed(order_id)
    with (
        spans.tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request,
        tracing.order_baggage(order_id),
    ):
        async with traced_engine.begin() as conn:
            await outbox.append(conn, [event])
    writer = request.get_span_context()

    async with traced_engine.connect() as conn:
        stored = msgspec.json.decode(
            (
                await conn.execute(
                    text("SELECT headers::text FROM outbox WHERE event_id = :id"),
                    {"id": event.event_id},
                )
            ).scalar_one()
        )
    assert ids(stored["traceparent"]) == (writer.trace_id, writer.span_id)
    assert stored["baggage"] == f"{tracing.ORDER_ID}={order_id}"

    relay = outbox.OutboxRelay(js, database_url=traced_engine.url.render_as_string(False))
    try:
        assert await relay.publish_pending() == 1
    finally:
        await relay.close()
    await asyncio.sleep(0)  # the publish span ends in the ack's done callback
    headers = await consume_one(traced_engine, js)

    publish = spans.named("publish orders.events.OrderPlaced")
    process = spans.named("process orders.events.OrderPlaced")
    assert publish.kind is SpanKind.PRODUCER and publish.parent is not None
    assert publish.parent.span_id == writer.span_id
    assert ids(headers["traceparent"]) == (writer.trace_id, publish.context.span_id)
    assert process.kind is SpanKind.CONSUMER and process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert (process.attributes or {})[tracing.ORDER_ID] == order_id

    # The handler's database work is traced inside the process span, with the order id.
    in_trace = [s for s in spans.finished() if s.context.trace_id == writer.trace_id]
    effect_inserts = [s for s in in_trace if "INSERT" in s.name and "effects" in str(s.attributes)]
    assert effect_inserts, [s.name for s in in_trace]
    for span in effect_inserts:
        assert span.kind is SpanKind.CLIENT
        assert (span.attributes or {})[tracing.ORDER_ID] == order_id
    # The relay's own claim and mark queries start no trace of their own.
    assert all(s.parent is not None for s in spans.finished() if s.kind is SpanKind.CLIENT)


async def test_the_embedded_outbox_entry_keeps_the_writers_context(
    spans: Spans, mongo_url: str, js: JetStreamContext
) -> None:
    client, db = mongo_connect(mongo_url)  # after tracing is set up: its commands are traced
    try:
        docs = db[f"traced_{uuid.uuid4().hex[:8]}"]
        order_id = str(uuid.uuid4())
        event = placed(order_id)
        with (
            spans.tracer.start_as_current_span("PATCH /products", kind=SpanKind.SERVER) as request,
            tracing.order_baggage(order_id),
        ):
            await docs.update_one(
                {"_id": order_id}, mongo_outbox.staged([event], first_seq=0), upsert=True
            )
        writer = request.get_span_context()
        document = await docs.find_one({"_id": order_id})
        assert document is not None
        (entry,) = document[mongo_outbox.OUTBOX_FIELD].values()
        assert ids(entry["headers"]["traceparent"]) == (writer.trace_id, writer.span_id)

        assert await mongo_outbox.publish_pending(docs, js) == 1
        publish = spans.named("publish orders.events.OrderPlaced")
        assert publish.parent is not None and publish.parent.span_id == writer.span_id
        assert (publish.attributes or {})["messaging.message.id"] == event.event_id
        # The document write itself is a database span of the request, with the order id.
        updates = [s for s in spans.finished() if s.name.endswith(".update")]
        assert len(updates) == 1, [s.name for s in spans.finished()]
        update = updates[0]
        assert update.kind is SpanKind.CLIENT and update.parent is not None
        assert update.parent.span_id == writer.span_id
        assert (update.attributes or {})[tracing.ORDER_ID] == order_id
    finally:
        await client.close()


async def test_the_deadline_cancellation_continues_the_placing_requests_trace(
    spans: Spans, traced_engine: AsyncEngine
) -> None:
    async with traced_engine.begin() as conn:
        await OrderStore(conn).set_price("sku-t", Decimal("1.00"))
    placed_at = datetime.now(UTC)
    with spans.tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request:
        result = await application.place_order(
            PostgresUnitOfWork(traced_engine, OrderStore),
            application.PlaceOrder("u1", (("sku-t", 1),)),
            now=placed_at,
            deadline_s=1,
        )
    writer = request.get_span_context()
    assert (spans.named("POST /orders").attributes or {})[tracing.ORDER_ID] == result.order_id

    # The sweeper runs in a background loop: no request or message around it.
    unit = PostgresUnitOfWork(traced_engine, OrderStore)
    assert await application.cancel_overdue(unit, placed_at + timedelta(seconds=2))

    deadline = spans.named("order deadline_exceeded")
    assert deadline.parent is not None and deadline.parent.span_id == writer.span_id
    assert deadline.context.trace_id == writer.trace_id
    assert (deadline.attributes or {})[tracing.ORDER_ID] == result.order_id
    async with traced_engine.connect() as conn:
        cancelled = msgspec.json.decode(
            (
                await conn.execute(
                    text(
                        "SELECT headers::text FROM outbox WHERE event_type = 'OrderCancelled'"
                        " AND aggregate_id = :id"
                    ),
                    {"id": result.order_id},
                )
            ).scalar_one()
        )
    assert ids(cancelled["traceparent"]) == (writer.trace_id, deadline.context.span_id)
    assert cancelled["baggage"] == f"{tracing.ORDER_ID}={result.order_id}"
