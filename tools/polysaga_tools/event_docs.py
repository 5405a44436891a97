"""The documents derived from the event declaration: the README's event catalogue and the
AsyncAPI 3.0 document (one channel per subject, one message per event type and version with
the CloudEvents headers it carries and its body's JSON schema from the payload Structs, who
sends it and who receives it, and the dead letters a consumer writes). ``polysaga asyncapi``
writes both; ``--check`` compares the committed files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from polysaga import __version__
from polysaga.events import declaration
from polysaga.events.envelope import SPEC_VERSION, TRACE_HEADERS, source_of
from polysaga.events.payloads import Payload
from polysaga.messaging import dead_letters

DOCUMENT = Path("docs/asyncapi.yaml")
README = Path("README.md")
CATALOGUE_START, CATALOGUE_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"
_SCHEMAS = "#/components/schemas/{name}"


def _message_id(spec: declaration.EventSpec, version: int) -> str:
    return f"{spec.name}.v{version}"


def _bodies() -> list[tuple[declaration.EventSpec, int, type[Payload]]]:
    """Every (event, version, body) a consumer may read, the current version first."""
    found = []
    for spec in declaration.EVENTS:
        found.append((spec, spec.version, spec.payload))
        found += [(spec, v, body) for v, body in sorted(spec.earlier.items(), reverse=True)]
    return found


def _headers(spec: declaration.EventSpec, version: int) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string"}
    properties: dict[str, Any] = {
        "ce-specversion": {"const": SPEC_VERSION},
        "ce-id": {"type": "string", "format": "uuid", "description": "The event's id."},
        "ce-type": {"const": f"{declaration.EVENT_TYPE_PREFIX}.{spec.name}.v{version}"},
        "ce-source": {"const": source_of(spec)},
        "ce-subject": {
            **text,
            "description": f"The aggregate id: the body's {spec.context.aggregate_field}.",
        },
        "ce-time": {
            "type": "string",
            "format": "date-time",
            "description": "When it happened (RFC 3339, with an offset).",
        },
        "content-type": {"const": "application/json"},
        "Nats-Msg-Id": {
            **text,
            "description": "= ce-id: JetStream drops a re-publish within its window.",
        },
    }
    for name in TRACE_HEADERS:
        properties[name] = {**text, "description": "W3C trace context (optional)."}
    return {
        "type": "object",
        "required": [
            "ce-specversion",
            "ce-id",
            "ce-type",
            "ce-source",
            "ce-subject",
            "ce-time",
            "Nats-Msg-Id",
        ],
        "properties": properties,
    }


def _dead_letter_headers() -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string"}
    return {
        "type": "object",
        "description": "The original message's headers, and why it is here.",
        "required": [dead_letters.REASON, dead_letters.DELIVERIES, dead_letters.ORIGINAL_SUBJECT],
        "properties": {
            dead_letters.REASON: {"enum": [r.value for r in dead_letters.Reason]},
            dead_letters.DETAIL: {**text, "maxLength": dead_letters.DETAIL_MAX_CHARS},
            dead_letters.DELIVERIES: {**text, "pattern": "^[0-9]+$"},
            dead_letters.ORIGINAL_SUBJECT: text,
            dead_letters.FIRST_SEEN: {"type": "string", "format": "date-time"},
            dead_letters.LAST_SEEN: {"type": "string", "format": "date-time"},
        },
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as plain data in a stable order."""
    bodies = _bodies()
    refs, schemas = msgspec.json.schema_components(
        [body for _, _, body in bodies], ref_template=_SCHEMAS
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (spec, version, _), ref in zip(bodies, refs, strict=True):
        message_id = _message_id(spec, version)
        current = version == spec.version
        messages[message_id] = {
            "name": spec.name,
            "title": f"{spec.name} v{version}" + ("" if current else " (upcast when read)"),
            "contentType": "application/json",
            "headers": _headers(spec, version),
            "payload": ref,
            "correlationId": {
                "description": "The aggregate the event is about.",
                "location": "$message.header#/ce-subject",
            },
        }
        channel = channels.setdefault(
            spec.name,
            {
                "address": spec.subject,
                "title": spec.name,
                "description": f"On stream {spec.context.stream}; published by {spec.producer}.",
                "messages": {},
            },
        )
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
    for spec in declaration.EVENTS:
        channel_ref = {"$ref": f"#/channels/{spec.name}"}
        latest = {"$ref": f"#/channels/{spec.name}/messages/{_message_id(spec, spec.version)}"}
        operations[f"{spec.producer}.send.{spec.name}"] = {
            "action": "send",
            "channel": channel_ref,
            "summary": f"{spec.producer} publishes {spec.name} through its outbox.",
            "messages": [latest],
        }
        readable = [
            {"$ref": f"#/channels/{spec.name}/messages/{message_id}"}
            for message_id in channels[spec.name]["messages"]
        ]
        for consumer in sorted(spec.consumers):
            operations[f"{consumer}.receive.{spec.name}"] = {
                "action": "receive",
                "channel": channel_ref,
                "summary": (
                    f"{consumer}'s durable consumer on {spec.context.stream}; a message that"
                    " does not decode is a dead letter on its first delivery."
                ),
                "messages": readable,
            }
    channels["DeadLetters"] = {
        "address": f"{declaration.DEAD_LETTER_PREFIX}.{{consumer}}.{{subject}}",
        "title": "Dead letters",
        "description": (
            f"Stream {declaration.DEAD_LETTER_STREAM}: a message a consumer gave up on, body and"
            " headers unchanged, with why."
        ),
        "parameters": {
            "consumer": {"description": "The service that gave up on it."},
            "subject": {"description": "The subject the message came from."},
        },
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "A message a consumer gave up on",
        "headers": _dead_letter_headers(),
        "payload": {"description": "The original body, whatever its bytes."},
    }
    for service in sorted({c for spec in declaration.EVENTS for c in spec.consumers}):
        operations[f"{service}.send.DeadLetter"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/DeadLetters"},
            "summary": f"{service} dead-letters what it cannot handle.",
            "messages": [{"$ref": "#/channels/DeadLetters/messages/DeadLetter"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "polysaga events",
            "version": __version__,
            "description": (
                "Every event of polysaga's services, generated from the event declaration"
                " (services/polysaga/events/declaration.py) by `polysaga asyncapi`: do not"
                " edit. CloudEvents attributes travel in NATS headers, the body is JSON."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "JetStream, as `polysaga up` runs it (the port is chosen at start).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    header = "# Generated by `polysaga asyncapi` from the event declaration. Do not edit.\n"
    # Through JSON and back: a value shared by several places is written out at each of them
    # (yaml would otherwise write anchors and aliases, which readers of the document trip on).
    unshared = msgspec.json.decode(msgspec.json.encode(document()))
    body: str = yaml.safe_dump(unshared, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def readme_with_catalogue(readme: str) -> str:
    """The README with its catalogue block (between the markers) generated afresh."""
    start = readme.index(CATALOGUE_START) + len(CATALOGUE_START)
    end = readme.index(CATALOGUE_END)
    return f"{readme[:start]}\n{declaration.catalogue_markdown()}\n{readme[end:]}"


def out_of_step(root: Path = Path()) -> list[Path]:
    """The committed documents that differ from what the declaration generates."""
    stale = []
    if not (root / DOCUMENT).is_file() or (root / DOCUMENT).read_text() != render():
        stale.append(DOCUMENT)
    readme = (root / README).read_text()
    if readme_with_catalogue(readme) != readme:
        stale.append(README)
    return stale


def write(root: Path = Path()) -> list[Path]:
    """Write both documents; returns what changed."""
    changed = out_of_step(root)
    (root / DOCUMENT).parent.mkdir(parents=True, exist_ok=True)
    (root / DOCUMENT).write_text(render())
    readme = (root / README).read_text()
    (root / README).write_text(readme_with_catalogue(readme))
    return changed
