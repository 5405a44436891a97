"""Tracing, in one place: the OpenTelemetry set-up of a service process (resource, sampler,
OTLP export, HTTP/database instrumentation) and the messaging spans every service shares.

One order's saga is one trace. The context (W3C ``traceparent``/``tracestate`` and
``baggage``) is captured into the outbox row when the row is written, so the relay's
``publish`` span is a child of the request or handler that wrote it; the relay sends its own
context in the NATS headers, and each consumer's ``process`` span continues it. The order id
travels as baggage (``app.order.id``) and is copied onto every span as it starts.

The SDK is always set up, so the context always travels (on every HTTP call and event) and
every log line can name its trace. Spans are exported only with ``POLYSAGA_OTLP_ENDPOINT``
(or an exporter a test gives); without one, new traces start unsampled — the flag says so
— and nothing is recorded, while a sampled trace arriving from a caller stays sampled.
Database spans exist only when exporting: they carry no context anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from polysaga import __version__
from polysaga.settings import ServiceSettings

if TYPE_CHECKING:
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin
    from opentelemetry.instrumentation.pymongo import CommandTracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from polysaga.events.envelope import Envelope

log = logging.getLogger(__name__)

ORDER_ID = "app.order.id"  # baggage key and span attribute
MESSAGING_SYSTEM = "nats"
# Requests that would flood the trace store without telling anything about a saga.
UNTRACED_PATHS = ["^/metrics$", "^/healthz$", "^/readyz$", "^/schema"]

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_exporting = False
_mongo_listener: CommandTracer | None = None


def enabled() -> bool:
    """Are spans exported (not merely propagated)?"""
    return _exporting


def resource(service_name: str, settings: ServiceSettings) -> Resource:
    return Resource.create(
        {
            "service.name": service_name,
            "service.version": settings.service_version,
            # The name the issue and older semconv use, and the current stable one.
            "deployment.environment": settings.deployment_environment,
            "deployment.environment.name": settings.deployment_environment,
        }
    )


def order_id_processor() -> BaggageSpanProcessor:
    """Copies the baggage entry ``app.order.id`` onto each span as it starts."""
    return BaggageSpanProcessor(lambda key: key == ORDER_ID)


class RootSampler(Sampler):
    """Decides for spans that start a trace. A database or HTTP client call with no request
    or message around it is a background loop's housekeeping (relay polls, the deadline
    sweep, gauges, pruning): it starts no trace. Anything else is kept at the ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RootSampler{{{self._ratio.get_description()}}}"


def sampler(ratio: float) -> Sampler:
    """Parent-based: a trace that arrives sampled (or not) stays so in every service."""
    return ParentBased(root=RootSampler(ratio))


def configure(
    service_name: str, settings: ServiceSettings, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Set tracing up for this process: propagation always, export to the OTLP endpoint if
    one is set (``exporter`` replaces it; tests use an in-memory one). A process that already
    propagates (several apps in one test process) keeps its set-up unless this one exports."""
    global _provider, _tracer, _exporting, _mongo_listener
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")
    if _provider is not None:
        if exporter is None:
            return _provider
        if _exporting:
            raise RuntimeError("tracing is already exporting in this process")
        _tear_down()
    # Without an exporter nothing would keep a span: new traces are honestly unsampled.
    ratio = settings.trace_sample_ratio if exporter is not None else 0.0
    provider = TracerProvider(resource=resource(service_name, settings), sampler=sampler(ratio))
    provider.add_span_processor(order_id_processor())
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("polysaga", __version__)
    _exporting = exporter is not None
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    # Outgoing HTTP calls carry the context whether or not spans are kept.
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    if _exporting:
        from opentelemetry.instrumentation.pymongo import CommandTracer
        from pymongo import monitoring

        # The pymongo instrumentation's command listener, registered globally: MongoDB
        # clients created from now on report to it. Registered here rather than through its
        # instrumentor, which keeps the first tracer provider for the life of the process.
        _mongo_listener = CommandTracer(
            provider.get_tracer("opentelemetry.instrumentation.pymongo")
        )
        monitoring.register(_mongo_listener)
        log.info("tracing to %s", settings.otlp_endpoint or type(exporter).__name__)
    return provider


def shutdown() -> None:
    """Flush what is buffered and undo an exporting set-up (app shutdown; tests). A
    propagating-only set-up stays: it holds nothing, and other apps of the process use it."""
    if _exporting:
        _tear_down()


def reset() -> None:
    """Undo any set-up, exporting or not (tests that need a process without tracing)."""
    _tear_down()


def _tear_down() -> None:
    global _provider, _tracer, _exporting, _mongo_listener
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    if _mongo_listener is not None:
        _mongo_listener.is_enabled = False  # pymongo cannot unregister a global listener
    if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().uninstrument()
    _provider.shutdown()  # the batch processor exports what it still holds
    _provider, _tracer, _exporting, _mongo_listener = None, None, False, None


def instrument_engine(engine: AsyncEngine) -> None:
    """Database spans for every statement on this engine (one engine per service process),
    when spans are exported."""
    if _provider is None or not _exporting:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares "sqlalchemy < 2.1" only because its range predates 2.1; the
    # engine events it uses are unchanged, and the trace propagation tests check its spans.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=_provider, skip_dep_check=True
    )


def litestar_plugin() -> OpenTelemetryPlugin | None:
    """HTTP server spans; the span is renamed to the route template once routing is done
    (see ``name_http_span``), since the raw path would make span names unbounded."""
    if _provider is None:
        return None
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    return OpenTelemetryPlugin(
        OpenTelemetryConfig(
            tracer_provider=_provider,
            exclude=UNTRACED_PATHS,
            exclude_spans=["receive", "send"],
            scope_span_details_extractor=lambda scope: (str(scope.get("method", "HTTP")), {}),
        )
    )


def name_http_span(method: str, route: str) -> None:
    if _tracer is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


# --- propagation ----------------------------------------------------------------------


def current_headers() -> dict[str, str]:
    """The current trace context and baggage as W3C headers, to be stored with an outbox
    row or document entry; empty when tracing is not set up (the event's own headers then
    stand)."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str], order_id: Any = None) -> context.Context:
    """The context carried by message headers, with the order id put into its baggage."""
    ctx = propagate.extract(headers)
    if isinstance(order_id, str) and order_id:
        ctx = baggage.set_baggage(ORDER_ID, order_id, ctx)
    return ctx


def in_context_of(event: Envelope[Any]) -> contextlib.AbstractContextManager[None]:
    """The event's own trace context (and order id) as the current one, with no span of our
    own: for what is said about an event outside its processing span (a failure, a retry,
    a dead letter), so those log lines join the saga's trace too."""
    return _attached(extract(event.trace_headers, event.order_id))


@contextlib.contextmanager
def _attached(ctx: context.Context) -> Iterator[None]:
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def _span_in(
    ctx: context.Context, name: str, kind: SpanKind, attributes: dict[str, Any]
) -> Iterator[Span]:
    """A span that is current, in a context whose baggage is current too (children and
    outbox writes inside see both)."""
    assert _tracer is not None
    with _attached(ctx), _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as s:
        yield s


def order_baggage(order_id: str) -> contextlib.AbstractContextManager[object]:
    """From here on (the request that places an order) the order id is baggage, and the
    current span carries it too: that span started before the id existed."""
    if _tracer is None:
        return contextlib.nullcontext()
    trace.get_current_span().set_attribute(ORDER_ID, order_id)
    return _attached(baggage.set_baggage(ORDER_ID, order_id))


def continued(
    headers: Mapping[str, str], name: str, *, order_id: str
) -> contextlib.AbstractContextManager[object]:
    """A span that continues a stored trace context as its child, for work that no message
    or request starts (the order service's deadline sweeper)."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _span_in(extract(headers, order_id), name, SpanKind.INTERNAL, {ORDER_ID: order_id})


# --- messaging spans (OpenTelemetry messaging semantic conventions) -----------------------


class Publication:
    """One message's ``publish`` span and the headers to send it with: the row's stored
    headers with the trace context replaced by the publish span's own."""

    __slots__ = ("_span", "headers")

    def __init__(self, headers: dict[str, str], span: Span | None) -> None:
        self.headers = headers
        self._span = span

    def end(self, error: BaseException | None = None) -> None:
        if self._span is None:
            return
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._span.end()

    def end_when_acked(self, ack: asyncio.Future[Any]) -> None:
        """End the span when the server acknowledges (or the ack fails or is given up on)."""
        if self._span is not None:
            ack.add_done_callback(self._acked)

    def _acked(self, ack: asyncio.Future[Any]) -> None:
        if ack.cancelled():
            self.end(TimeoutError("no acknowledgement in time"))
        else:
            self.end(ack.exception())


def start_publish(subject: str, headers: Mapping[str, str]) -> Publication:
    """A PRODUCER span, child of the context stored with the outbox row."""
    if _tracer is None:
        return Publication(dict(headers), None)
    parent = propagate.extract(headers)
    span = _tracer.start_span(
        f"publish {subject}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.destination.name": subject,
            # Current semconv: the operation *type* of a publish is "send"; its name is
            # the system's own word for it.
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.message.id": headers.get("ce-id", ""),
        },
    )
    sent = dict(headers)
    propagate.inject(sent, context=trace.set_span_in_context(span, parent))
    return Publication(sent, span)


@contextlib.contextmanager
def publishing(subject: str, headers: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """``start_publish`` for a publish that is awaited in place; yields the headers to send."""
    publication = start_publish(subject, headers)
    try:
        yield publication.headers
    except BaseException as exc:
        publication.end(exc)
        raise
    publication.end()


_NOT_TRACED = contextlib.nullcontext()


def processing(
    subject: str, consumer: str, event: Envelope[Any]
) -> contextlib.AbstractContextManager[object]:
    """A CONSUMER span around one message's handling, continuing the publisher's trace; the
    event's order id (if it has one) becomes baggage for everything the handler does."""
    if _tracer is None:
        return _NOT_TRACED
    return _span_in(
        extract(event.trace_headers, event.order_id),
        f"process {subject}",
        SpanKind.CONSUMER,
        {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.destination.name": subject,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": event.event_id,
            "messaging.consumer.group.name": consumer,
        },
    )
