"""The consumer edge: a message's headers and bytes become a typed, current-version event,
or a MalformedEventError / UnsupportedVersionError saying why not.

Whatever the bytes (invalid UTF-8, a 10,000-deep array, a wrong type, an unknown field, a
negative amount, a ``ce-id`` that is not a UUID, a ``ce-type`` that is not the subject's,
a time out of range), ``decode`` raises one of those two and nothing else, so the consumer
dead-letters the message at once instead of retrying what can never succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import msgspec

from polysaga.events import declaration
from polysaga.events.envelope import (
    CE_TYPE,
    MAX_EVENT_BODY_BYTES,
    SPEC_VERSION,
    TRACE_HEADERS,
    Envelope,
    MalformedEventError,
    source_of,
)
from polysaga.events.payloads import Payload
from polysaga.events.upcasting import UnsupportedVersionError, readable, upcast_payload

_MAX_ATTRIBUTE_CHARS = 256


@dataclass(frozen=True)
class Attributes:
    """The CloudEvents attributes of a message, checked."""

    event_id: str
    name: str
    version: int
    source: str
    aggregate_id: str
    time: datetime
    trace_headers: dict[str, str]


def read_attributes(headers: Mapping[str, str] | None) -> Attributes:
    if not headers:
        raise MalformedEventError("message has no CloudEvents headers")
    try:
        ce_id, ce_type = headers["ce-id"], headers["ce-type"]
        source, aggregate_id = headers["ce-source"], headers["ce-subject"]
        ce_time = headers["ce-time"]
    except KeyError as exc:
        raise MalformedEventError(f"missing CloudEvents header {exc}") from None
    if headers.get("ce-specversion") != SPEC_VERSION:
        raise MalformedEventError(f"unsupported ce-specversion {headers.get('ce-specversion')!r}")
    for name, value in (("ce-source", source), ("ce-subject", aggregate_id)):
        if not 0 < len(value) <= _MAX_ATTRIBUTE_CHARS:
            raise MalformedEventError(f"{name} must hold 1 to {_MAX_ATTRIBUTE_CHARS} characters")
    match = CE_TYPE.fullmatch(ce_type)
    if match is None:
        raise MalformedEventError(f"unrecognised ce-type {ce_type[:_MAX_ATTRIBUTE_CHARS]!r}")
    return Attributes(
        event_id=_event_id(ce_id),
        name=match.group(1),
        version=int(match.group(2)),
        source=source,
        aggregate_id=aggregate_id,
        time=_time(ce_time),
        trace_headers={k: headers[k] for k in TRACE_HEADERS if k in headers},
    )


def _event_id(ce_id: str) -> str:
    """The canonical (lower-case, hyphenated) form of a UUID ce-id; the inbox keys on it."""
    try:
        canonical: str | None = str(uuid.UUID(ce_id))
    except ValueError:
        canonical = None
    if canonical != ce_id.lower():  # uuid.UUID also takes braces, "urn:uuid:", no hyphens
        raise MalformedEventError(f"ce-id {ce_id[:_MAX_ATTRIBUTE_CHARS]!r} is not a UUID")
    return canonical


def _time(ce_time: str) -> datetime:
    """ce-time in UTC; refused without an offset, or out of range once in UTC."""
    try:
        time = datetime.fromisoformat(ce_time)
        if time.tzinfo is not None:
            return time.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise MalformedEventError(
        f"ce-time {ce_time[:_MAX_ATTRIBUTE_CHARS]!r} is not an RFC 3339 time with an offset"
    )


@cache
def _decoder(payload: type[Payload]) -> msgspec.json.Decoder[Payload]:
    return msgspec.json.Decoder(payload)


def decode_payload(name: str, version: int, body: bytes) -> Payload:
    """The body of ``name`` at ``version``, decoded by its Struct and upcast to the current
    version's. Raises UnsupportedVersionError or MalformedEventError, nothing else."""
    payload = readable(name, version)
    if len(body) > MAX_EVENT_BODY_BYTES:
        raise MalformedEventError(f"body of {len(body)} bytes exceeds {MAX_EVENT_BODY_BYTES}")
    try:
        data = _decoder(payload).decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise MalformedEventError(f"{name}.v{version} body: {exc}") from None
    except (UnicodeDecodeError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        # Invalid UTF-8 and nesting deeper than the interpreter's stack are not DecodeErrors.
        raise MalformedEventError(f"{name}.v{version} body: {type(exc).__name__}") from None
    return upcast_payload(name, version, data)


def decode(headers: Mapping[str, str] | None, body: bytes, subject: str) -> Envelope[Payload]:
    """The event a message on ``subject`` carries, typed and at the current version."""
    attributes = read_attributes(headers)
    readable(attributes.name, attributes.version)
    spec = declaration.spec(attributes.name)
    if subject != spec.subject:
        raise MalformedEventError(f"a {spec.name} does not travel on {subject[:200]!r}")
    if attributes.source != source_of(spec):
        raise MalformedEventError(
            f"ce-source {attributes.source!r} is not {spec.name}'s producer {source_of(spec)!r}"
        )
    data = decode_payload(attributes.name, attributes.version, body)
    if spec.aggregate_id(data) != attributes.aggregate_id:
        raise MalformedEventError(
            f"ce-subject {attributes.aggregate_id!r} is not the body's"
            f" {spec.context.aggregate_field}"
        )
    return Envelope(
        event_id=attributes.event_id,
        name=spec.name,
        version=spec.version,
        source=attributes.source,
        aggregate_id=attributes.aggregate_id,
        time=attributes.time,
        data=data,
        trace_headers=attributes.trace_headers,
    )


__all__ = [
    "Attributes",
    "MalformedEventError",
    "UnsupportedVersionError",
    "decode",
    "decode_payload",
    "read_attributes",
]
