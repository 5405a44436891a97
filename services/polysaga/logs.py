"""Logs as JSON lines on stderr, one object per record: ``time``, ``level``, ``service``,
``logger``, ``message``, and ``trace_id``/``span_id`` of the current span and ``order_id``
(from the record, the span's baggage, or the route's path) whenever they are known, so a
line joins its saga's trace. Access logs are sampled (``POLYSAGA_ACCESS_LOG_SAMPLE_RATIO``;
0 = off)."""

from __future__ import annotations

import logging
import random
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
from opentelemetry import baggage, trace

from polysaga.settings import ServiceSettings
from polysaga.tracing import ORDER_ID as ORDER_ID_BAGGAGE

# Libraries that log every request or command at INFO or DEBUG: their lines would drown ours.
CHATTY_LIBRARIES = ("httpx", "httpcore", "pymongo", "nats", "asyncio", "aiosmtplib", "uvicorn")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

access_log = logging.getLogger("polysaga.access")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
            entry["trace_sampled"] = span.trace_flags.sampled
        order_id = getattr(record, "order_id", None) or baggage.get_baggage(ORDER_ID_BAGGAGE)
        if order_id:
            entry["order_id"] = str(order_id)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry, enc_hook=str).decode()


def configure_logging(service: str, settings: ServiceSettings) -> None:
    """JSON lines on stderr for every logger of the process (uvicorn's included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # warnings become records too, not raw stderr text
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class AccessLog:
    """One line per sampled request (after it ended), with what the RED metrics measure."""

    def __init__(self, sample_ratio: float) -> None:
        self._ratio = sample_ratio

    def record(
        self,
        method: str,
        route: str,
        path: str,
        status: int,
        duration_s: float,
        path_params: dict[str, Any],
    ) -> None:
        if self._ratio <= 0 or random.random() >= self._ratio:
            return
        # OpenTelemetry's semantic convention names for the same facts.
        extra: dict[str, Any] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": path,
            "http.response.status_code": status,
            "duration_ms": round(duration_s * 1000, 3),
        }
        if order_id := path_params.get("order_id"):
            extra["order_id"] = str(order_id)
        access_log.info("%s %s %d", method, path, status, extra=extra)
