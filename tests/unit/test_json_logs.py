"""JSON log lines: the fields every line has, the trace and span of the current span and the
order id from baggage (so a line joins its saga's trace), extras and exceptions; and the
access log's sampling."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from event_samples import sample
from polysaga import tracing
from polysaga.events.envelope import new_event
from polysaga.logs import AccessLog, JsonFormatter, access_log

ORDER_ID = "4a9e3a9e-8d4f-4d8e-9a57-2f1c3b0f7e11"


def formatted(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter("inventory").format(record)
    assert "\n" not in line  # one line per record
    parsed: dict[str, object] = json.loads(line)
    return parsed


def record(message: str = "reserved %s", *args: object, **extra: object) -> logging.LogRecord:
    args = args or (("stock",) if "%s" in message else ())
    made = logging.makeLogRecord(
        {"name": "inventory.application", "levelno": logging.INFO, "levelname": "INFO"}
    )
    made.msg, made.args = message, args
    made.__dict__.update(extra)
    return made


def test_a_line_outside_any_span_has_the_basic_fields_only() -> None:
    line = formatted(record())
    assert line["service"] == "inventory" and line["level"] == "info"
    assert line["logger"] == "inventory.application" and line["message"] == "reserved stock"
    assert str(line["time"]).endswith("+00:00")
    assert not {"trace_id", "span_id", "order_id"} & set(line)


def test_a_line_about_an_event_outside_its_span_names_the_event_trace_and_order() -> None:
    """What the consumer logs after a handler failed (its span has ended) joins the saga."""
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    event = new_event(
        sample("StockReserved", order_id=uuid.UUID(ORDER_ID)),
        trace_headers={"traceparent": f"00-{trace_id}-{parent}-01"},
    )
    with tracing.in_context_of(event):
        line = formatted(record("failed on %s", "StockReserved"))
    assert (line["trace_id"], line["span_id"], line["order_id"]) == (trace_id, parent, ORDER_ID)
    assert "trace_id" not in formatted(record())  # nothing stays attached afterwards


def test_inside_a_span_the_line_names_its_trace_span_and_order() -> None:
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    token = context.attach(baggage.set_baggage(tracing.ORDER_ID, ORDER_ID))
    try:
        with tracer.start_as_current_span("process") as span:
            line = formatted(record(event_type="OrderPlaced"))
            ids = span.get_span_context()
    finally:
        context.detach(token)
    assert line["trace_id"] == format(ids.trace_id, "032x")
    assert line["span_id"] == format(ids.span_id, "016x")
    assert line["trace_sampled"] is True
    assert line["order_id"] == ORDER_ID and line["event_type"] == "OrderPlaced"


def test_an_explicit_order_id_and_an_exception_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("failed", order_id="o-7")
        failing.exc_info = sys.exc_info()
    line = formatted(failing)
    assert line["order_id"] == "o-7"
    assert "ValueError: boom" in str(line["exception"])


@pytest.fixture
def captured() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    access_log.addHandler(handler)
    level, access_log.level = access_log.level, logging.INFO
    try:
        yield records
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)


def test_the_access_log_is_off_at_zero_and_complete_at_one(
    captured: list[logging.LogRecord],
) -> None:
    AccessLog(0.0).record("GET", "/x", "/x", 200, 0.01, {})
    assert captured == []
    AccessLog(1.0).record(
        "GET", "/orders/{order_id:uuid}", f"/orders/{ORDER_ID}", 404, 0.0123, {"order_id": ORDER_ID}
    )
    (line,) = [formatted(r) for r in captured]
    assert line["message"] == f"GET /orders/{ORDER_ID} 404"
    assert (
        line["http.route"] == "/orders/{order_id:uuid}" and line["http.response.status_code"] == 404
    )
    assert line["order_id"] == ORDER_ID and line["duration_ms"] == 12.3


def test_the_access_log_samples_about_its_ratio(captured: list[logging.LogRecord]) -> None:
    sampled = AccessLog(0.25)
    for _ in range(4000):
        sampled.record("GET", "/x", "/x", 200, 0.001, {})
    assert 800 < len(captured) < 1200
