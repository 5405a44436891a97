"""The event envelope: CloudEvents attributes in NATS headers, a JSON body.

A message carries ``ce-id`` (a UUID), ``ce-type`` (``io.polysaga.<Name>.v<N>``),
``ce-source``, ``ce-time``, ``ce-specversion``, ``ce-subject`` (the aggregate id),
``Nats-Msg-Id`` (= ce-id, so the server deduplicates a re-publish) and the W3C trace
headers. The body is the event's payload Struct (``polysaga.events.payloads``) as JSON.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec

from polysaga.events import declaration
from polysaga.events.payloads import Payload

SPEC_VERSION = "1.0"
NATS_MSG_ID = "Nats-Msg-Id"
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
# Matched whole (fullmatch): "$" would let a trailing newline through.
CE_TYPE = re.compile(
    rf"{re.escape(declaration.EVENT_TYPE_PREFIX)}\.([A-Za-z]{{1,100}})\.v([1-9][0-9]{{0,5}})"
)

P = TypeVar("P", bound=Payload, covariant=True)
NewP = TypeVar("NewP", bound=Payload)


class MalformedEventError(ValueError):
    """A message that is not a well-formed polysaga event; it can never succeed."""


@dataclass(frozen=True)
class Envelope(Generic[P]):
    """One event: its CloudEvents attributes and its typed body."""

    event_id: str
    name: str
    version: int
    source: str
    aggregate_id: str
    time: datetime
    data: P
    trace_headers: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> declaration.EventSpec:
        return declaration.spec(self.name)

    @property
    def subject(self) -> str:
        return self.spec.subject

    @property
    def ce_type(self) -> str:
        return f"{declaration.EVENT_TYPE_PREFIX}.{self.name}.v{self.version}"

    @property
    def order_id(self) -> str | None:
        """The order this event is about, if it is about one (tracing's baggage)."""
        order_id = getattr(self.data, "order_id", None)
        return None if order_id is None else str(order_id)


def source_of(spec: declaration.EventSpec) -> str:
    """The ``ce-source`` of every event of this type: its producing service."""
    return f"/polysaga/{spec.producer}"


def new_event(payload: NewP, *, trace_headers: Mapping[str, str] | None = None) -> Envelope[NewP]:
    """A fresh event of the current version, produced by the context that owns it; its
    type and aggregate id follow from the payload."""
    spec = declaration.spec_of(payload)
    return Envelope(
        event_id=str(uuid.uuid4()),
        name=spec.name,
        version=spec.version,
        source=source_of(spec),
        aggregate_id=spec.aggregate_id(payload),
        time=datetime.now(UTC),
        data=payload,
        trace_headers=dict(trace_headers or {}),
    )


def to_headers(event: Envelope[Payload]) -> dict[str, str]:
    headers = {
        "ce-specversion": SPEC_VERSION,
        "ce-id": event.event_id,
        "ce-type": event.ce_type,
        "ce-source": event.source,
        "ce-subject": event.aggregate_id,
        "ce-time": event.time.isoformat(),
        "content-type": "application/json",
        NATS_MSG_ID: event.event_id,
    }
    headers.update(event.trace_headers)
    return headers


def encode_body(data: Payload) -> bytes:
    return msgspec.json.encode(data)


def known_event_name(ce_type: str) -> str:
    """The declared event name in a ce-type, or "unknown" (keeps metric labels bounded)."""
    match = CE_TYPE.fullmatch(ce_type)
    if match is None or match.group(1) not in {e.name for e in declaration.EVENTS}:
        return "unknown"
    return match.group(1)


# An event is one fact about one aggregate; no producer here comes near this. A larger body
# is refused before it is parsed (NATS itself caps a message at its max_payload, 1 MiB).
MAX_EVENT_BODY_BYTES = 256 * 1024
