"""Each service's NATS permissions, derived from the event declaration: least privilege that
still lets it run.

A service may publish its own context's events and its own dead letters, nothing else. It
reaches JetStream only through the API subjects of what it uses: create the streams it
touches (only a stream's producer may change its configuration), create and read its own
durable consumer on each stream it consumes, fetch from it and ack what it was given. A read
model that rebuilds from history may also create, read and delete its one replay consumer.
Replies come to the service's own inbox prefix, so no service can read another's replies.

The output is the ``permissions`` block of a nats-server user, as ``polysaga up`` writes it
and as the chart templates it from ``charts/polysaga/files/nats-permissions.json``.
"""

from __future__ import annotations

import json
from typing import Any

from polysaga.events import declaration

JS_API = "$JS.API"
# One permission set per service: {"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}
Permissions = dict[str, dict[str, list[str]]]


def inbox_prefix(service: str) -> str:
    """Where a service's request replies arrive (nats-py ``inbox_prefix``)."""
    return f"_INBOX.{service}"


def replay_consumer_name(service: str) -> str:
    """The one ephemeral consumer a read model replays history with."""
    return f"{service}-replay"


def streams_touched_by(service: str) -> tuple[set[str], set[str]]:
    """(streams it may create, streams it owns and may reconfigure): its own context's
    stream, the dead-letter stream when it consumes anything, and the streams it consumes."""
    owned = {c.stream for c in declaration.CONTEXTS if c.producer == service}
    consumed = {c.stream for c in declaration.consumed_by(service)}
    if consumed:
        owned.add(declaration.DEAD_LETTER_STREAM)
    return owned | consumed, owned


def _stream_subjects(service: str) -> list[str]:
    touched, owned = streams_touched_by(service)
    subjects: list[str] = []
    for stream in sorted(touched):
        subjects += [f"{JS_API}.STREAM.CREATE.{stream}", f"{JS_API}.STREAM.INFO.{stream}"]
    subjects += [f"{JS_API}.STREAM.UPDATE.{stream}" for stream in sorted(owned)]
    return subjects


def _consumer_subjects(service: str) -> list[str]:
    subjects: list[str] = []
    replay = replay_consumer_name(service)
    for context in declaration.consumed_by(service):
        stream = context.stream
        subjects += [
            # nats-py creates a named consumer without a filter token (it has several)
            f"{JS_API}.CONSUMER.CREATE.{stream}.{service}",
            f"{JS_API}.CONSUMER.INFO.{stream}.{service}",
            f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{service}",
            # ack, nak, in-progress and term of messages delivered to this consumer only
            f"$JS.ACK.{stream}.{service}.>",
        ]
        if service in declaration.READ_MODELS:
            subjects += [
                f"{JS_API}.CONSUMER.CREATE.{stream}.{replay}",
                f"{JS_API}.CONSUMER.INFO.{stream}.{replay}",
                f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{replay}",
                f"{JS_API}.CONSUMER.DELETE.{stream}.{replay}",
            ]
    return subjects


def service_permissions(service: str) -> Permissions:
    publish = [e.subject for e in declaration.published_by(service)]
    if declaration.consumed_by(service):
        publish.append(declaration.dead_letter_subject(service, ">"))
    publish += [*_stream_subjects(service), *_consumer_subjects(service)]
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": [f"{inbox_prefix(service)}.>"]},
    }


def all_permissions() -> dict[str, Permissions]:
    """Every service that talks to NATS, by name (the gateway does not)."""
    return {service: service_permissions(service) for service in sorted(declaration.services())}


def permissions_json() -> str:
    """The chart's ``files/nats-permissions.json``: stable, reviewable, diffable."""
    body: dict[str, Any] = all_permissions()
    return json.dumps(body, indent=2) + "\n"
