"""The event envelope: CloudEvents attributes in NATS headers, a JSON body.

A message carries ``ce-id``, ``ce-type`` (``io.polysaga.<Name>.v<N>``), ``ce-source``,
``ce-time``, ``ce-specversion``, ``ce-subject`` (the aggregate id), ``Nats-Msg-Id`` (= ce-id,
so the server deduplicates a re-publish) and the W3C trace headers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from polysaga.events import declaration

SPEC_VERSION = "1.0"
NATS_MSG_ID = "Nats-Msg-Id"
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
_CE_TYPE = re.compile(rf"^{re.escape(declaration.EVENT_TYPE_PREFIX)}\.([A-Za-z]+)\.v(\d+)$")


class MalformedEventError(ValueError):
    """A message that is not a well-formed polysaga event; it can never succeed."""


@dataclass(frozen=True)
class Envelope:
    event_id: str
    name: str
    version: int
    source: str
    aggregate_id: str
    time: datetime
    data: dict[str, Any]
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

    def with_data(self, version: int, data: dict[str, Any]) -> Envelope:
        return replace(self, version=version, data=data)


def new_event(
    name: str,
    aggregate_id: str,
    data: dict[str, Any],
    *,
    trace_headers: Mapping[str, str] | None = None,
) -> Envelope:
    """A fresh event of the current version, produced by the context that owns it."""
    spec = declaration.spec(name)
    return Envelope(
        event_id=str(uuid.uuid4()),
        name=name,
        version=spec.version,
        source=f"/polysaga/{spec.producer}",
        aggregate_id=aggregate_id,
        time=datetime.now(UTC),
        data=data,
        trace_headers=dict(trace_headers or {}),
    )


def to_headers(event: Envelope) -> dict[str, str]:
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


def encode_body(data: Mapping[str, Any]) -> bytes:
    return msgspec.json.encode(data)


def known_event_name(ce_type: str) -> str:
    """The declared event name in a ce-type, or "unknown" (keeps metric labels bounded)."""
    match = _CE_TYPE.match(ce_type)
    if match is None or match.group(1) not in {e.name for e in declaration.EVENTS}:
        return "unknown"
    return match.group(1)


# An event is one fact about one aggregate; no producer here comes near this. A larger body
# is refused before it is parsed (NATS itself caps a message at its max_payload, 1 MiB).
MAX_EVENT_BODY_BYTES = 256 * 1024


def decode(headers: Mapping[str, str] | None, body: bytes) -> Envelope:
    """Rebuild an envelope from a message; raises MalformedEventError on anything off."""
    if not headers:
        raise MalformedEventError("message has no CloudEvents headers")
    try:
        ce_type = headers["ce-type"]
        event_id = headers["ce-id"]
        source = headers["ce-source"]
        aggregate_id = headers["ce-subject"]
        time = datetime.fromisoformat(headers["ce-time"])
    except (KeyError, ValueError) as exc:
        raise MalformedEventError(f"bad or missing CloudEvents header: {exc}") from exc
    if time.tzinfo is None:
        raise MalformedEventError("ce-time has no UTC offset")
    if headers.get("ce-specversion") != SPEC_VERSION:
        raise MalformedEventError(f"unsupported ce-specversion {headers.get('ce-specversion')!r}")
    match = _CE_TYPE.match(ce_type)
    if match is None:
        raise MalformedEventError(f"unrecognised ce-type {ce_type!r}")
    if len(body) > MAX_EVENT_BODY_BYTES:
        raise MalformedEventError(f"body of {len(body)} bytes exceeds {MAX_EVENT_BODY_BYTES}")
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedEventError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEventError("body is not a JSON object")
    return Envelope(
        event_id=event_id,
        name=match.group(1),
        version=int(match.group(2)),
        source=source,
        aggregate_id=aggregate_id,
        time=time,
        data=data,
        trace_headers={k: headers[k] for k in TRACE_HEADERS if k in headers},
    )
