"""Tracing's pure parts: the order id from baggage onto spans, W3C headers through the outbox,
publish and process spans, the root sampler, and that nothing happens with tracing off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import UUID

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import event_samples as samples
from polysaga import tracing
from polysaga.events.envelope import new_event
from polysaga.settings import ServiceSettings

ORDER_ID = "4a9e3a9e-8d4f-4d8e-9a57-2f1c3b0f7e11"


class Traced:
    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    def spans(self) -> dict[str, ReadableSpan]:
        self.provider.force_flush()
        return {s.name: s for s in self.exporter.get_finished_spans()}


@pytest.fixture
def traced() -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = tracing.configure(
        "inventory", ServiceSettings(deployment_environment="test"), exporter=exporter
    )
    assert provider is not None
    try:
        yield Traced(provider, exporter)
    finally:
        tracing.shutdown()


def test_the_order_id_in_baggage_becomes_an_attribute_of_each_span_at_start() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(tracing.order_id_processor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    ctx = baggage.set_baggage(
        "other.key", "not copied", baggage.set_baggage(tracing.ORDER_ID, "o1")
    )
    token = context.attach(ctx)
    try:
        with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
            pass
    finally:
        context.detach(token)
    with tracer.start_as_current_span("outside"):
        pass
    attributes = {s.name: dict(s.attributes or {}) for s in exporter.get_finished_spans()}
    assert attributes["parent"] == {tracing.ORDER_ID: "o1"}
    assert attributes["child"] == {tracing.ORDER_ID: "o1"}
    assert attributes["outside"] == {}


def test_resource_names_the_service_its_version_and_environment(traced: Traced) -> None:
    resource = dict(traced.provider.resource.attributes)
    assert resource["service.name"] == "inventory"
    assert resource["service.version"] == ServiceSettings().service_version
    assert resource["deployment.environment"] == "test"
    assert resource["deployment.environment.name"] == "test"


def test_headers_carry_the_writer_context_through_publish_to_process(traced: Traced) -> None:
    tracer = traced.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request, tracing.order_baggage(ORDER_ID):
        stored = tracing.current_headers()  # what the outbox row keeps
    request_ctx = request.get_span_context()
    assert stored["traceparent"].split("-")[1:3] == [
        f"{request_ctx.trace_id:032x}",
        f"{request_ctx.span_id:016x}",
    ]
    assert stored["baggage"] == f"{tracing.ORDER_ID}={ORDER_ID}"

    row_headers = {"ce-id": "e1", "ce-type": "io.polysaga.OrderPlaced.v1", **stored}
    publication = tracing.start_publish("orders.events.OrderPlaced", row_headers)
    publication.end()
    sent = publication.headers
    assert sent["ce-id"] == "e1" and sent["baggage"] == stored["baggage"]
    assert sent["traceparent"] != stored["traceparent"]

    event = new_event(
        samples.order_placed(order_id=UUID(ORDER_ID)),
        trace_headers={k: sent[k] for k in ("traceparent", "baggage")},
    )
    with tracing.processing("orders.events.OrderPlaced", "inventory", event):
        assert baggage.get_baggage(tracing.ORDER_ID) == ORDER_ID  # for the handler's work
        handler_headers = tracing.current_headers()

    spans = traced.spans()
    publish, process = (
        spans["publish orders.events.OrderPlaced"],
        spans["process orders.events.OrderPlaced"],
    )
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert publish.parent is not None and publish.parent.span_id == request_ctx.span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert publish.context.trace_id == process.context.trace_id == request_ctx.trace_id
    assert sent["traceparent"].split("-")[2] == f"{publish.context.span_id:016x}"
    assert handler_headers["traceparent"].split("-")[2] == f"{process.context.span_id:016x}"
    assert dict(publish.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.destination.name": "orders.events.OrderPlaced",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.message.id": "e1",
        tracing.ORDER_ID: ORDER_ID,
    }
    assert dict(process.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.destination.name": "orders.events.OrderPlaced",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": event.event_id,
        "messaging.consumer.group.name": "inventory",
        tracing.ORDER_ID: ORDER_ID,
    }
    assert spans["request"].attributes == {tracing.ORDER_ID: ORDER_ID}


def test_the_events_order_id_becomes_baggage_when_the_headers_lack_it(traced: Traced) -> None:
    event = new_event(samples.stock_reserved(order_id=UUID(ORDER_ID)))
    with tracing.processing("inventory.events.StockReserved", "payment", event):
        stored = tracing.current_headers()
    assert stored["baggage"] == f"{tracing.ORDER_ID}={ORDER_ID}"
    process = traced.spans()["process inventory.events.StockReserved"]
    assert process.parent is None  # nothing to continue: a new trace
    assert (process.attributes or {})[tracing.ORDER_ID] == ORDER_ID


async def test_a_publish_never_acknowledged_ends_its_span_as_an_error(traced: Traced) -> None:
    publication = tracing.start_publish("orders.events.OrderPlaced", {"ce-id": "e2"})
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    publication.end_when_acked(ack)
    ack.cancel()
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    span = traced.spans()["publish orders.events.OrderPlaced"]
    assert span.status.status_code is StatusCode.ERROR


def test_a_failing_handler_marks_the_process_span(traced: Traced) -> None:
    event = new_event(samples.order_cancelled(order_id=UUID(ORDER_ID)))
    with (
        pytest.raises(RuntimeError),
        tracing.processing("orders.events.OrderCancelled", "inventory", event),
    ):
        raise RuntimeError("handler failed")
    span = traced.spans()["process orders.events.OrderCancelled"]
    assert span.status.status_code is StatusCode.ERROR


def test_the_deadline_cancellation_continues_the_stored_trace(traced: Traced) -> None:
    tracer = traced.provider.get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as request:
        stored = tracing.current_headers()
    with tracing.continued(stored, "order deadline_exceeded", order_id=ORDER_ID):
        assert baggage.get_baggage(tracing.ORDER_ID) == ORDER_ID
    span = traced.spans()["order deadline_exceeded"]
    assert span.parent is not None
    assert span.parent.span_id == request.get_span_context().span_id
    assert (span.attributes or {})[tracing.ORDER_ID] == ORDER_ID


def test_root_client_spans_are_dropped_and_their_children_too(traced: Traced) -> None:
    """A database call of a background loop starts no trace; one inside a request does."""
    tracer = traced.provider.get_tracer("test")
    with tracer.start_as_current_span("SELECT outbox", kind=SpanKind.CLIENT) as background:
        assert not background.is_recording()
        with tracer.start_as_current_span("child") as child:
            assert not child.is_recording()
    with (
        tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as request,
        tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as query,
    ):
        assert request.is_recording() and query.is_recording()


def test_sampling_ratio_zero_drops_new_traces_but_honours_a_sampled_parent() -> None:
    sampler = tracing.sampler(0.0)
    provider = TracerProvider(sampler=sampler)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("new", kind=SpanKind.SERVER) as root:
        assert not root.is_recording()
    sampled_parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id=1, span_id=2, is_remote=True, trace_flags=trace.TraceFlags(1)
            )
        )
    )
    with tracer.start_as_current_span("continued", context=sampled_parent) as child:
        assert child.is_recording()


def _traceparent(headers: dict[str, str]) -> tuple[str, str, bool]:
    """Trace id, span id and the sampled flag (bit 0; bit 1 may say the id is random)."""
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    return trace_id, span_id, bool(int(flags, 16) & 1)


def test_without_an_exporter_the_context_travels_with_an_honest_sampled_flag() -> None:
    tracing.reset()
    try:
        provider = tracing.configure("order", ServiceSettings())  # no endpoint
        assert provider is not None and not tracing.enabled()
        assert tracing.litestar_plugin() is not None  # incoming requests continue traces
        assert tracing.current_headers() == {}  # no span, no request: nothing to carry

        # A new trace (an event written with no request around it): unsampled, and says so.
        fresh = tracing.start_publish("orders.events.OrderPlaced", {"ce-id": "e1"})
        trace_id, _, sampled = _traceparent(fresh.headers)
        assert not sampled and trace_id != "0" * 32
        fresh.end()

        # A sampled trace from a caller stays sampled: the flag is the caller's decision.
        sampled = {"ce-id": "e2", "traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}
        publication = tracing.start_publish("orders.events.OrderPlaced", sampled)
        trace_id, span_id, sampled = _traceparent(publication.headers)
        assert (trace_id, sampled) == ("1" * 32, True) and span_id != "2" * 16
        publication.end()

        # A consumer continues the event's trace: its context and the order id are current,
        # so what it writes and logs carries them.
        event = new_event(
            samples.order_placed(order_id=UUID(ORDER_ID)),
            trace_headers={"traceparent": fresh.headers["traceparent"]},
        )
        with tracing.processing("orders.events.OrderPlaced", "inventory", event):
            assert baggage.get_baggage(tracing.ORDER_ID) == ORDER_ID
            written = tracing.current_headers()
            assert _traceparent(written)[0] == _traceparent(fresh.headers)[0]
            assert _traceparent(written)[2] is False
            assert ORDER_ID in written["baggage"]
        tracing.shutdown()  # an app's shutdown keeps the propagating set-up
        assert tracing.litestar_plugin() is not None
    finally:
        tracing.reset()


def test_a_process_never_set_up_passes_headers_through() -> None:
    tracing.reset()
    assert tracing.current_headers() == {}
    headers = {"ce-id": "e3", "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    publication = tracing.start_publish("orders.events.OrderPlaced", headers)
    assert publication.headers == headers and publication.headers is not headers
    publication.end()
    assert tracing.litestar_plugin() is None
