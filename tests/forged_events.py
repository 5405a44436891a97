"""Messages as a producer's own credentials can publish them: a declared event's CloudEvents
headers and any body at all, true, false or poison (importable because pytest puts tests/
on the path)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.js import JetStreamContext

from polysaga.events import declaration


def raw_headers(name: str, aggregate_id: str, **overrides: str) -> dict[str, str]:
    """Well-formed headers of the declared event ``name``; ``overrides`` replace any."""
    spec = declaration.spec(name)
    event_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": spec.ce_type,
        "ce-source": f"/polysaga/{spec.producer}",
        "ce-subject": aggregate_id,
        "ce-time": datetime.now(UTC).isoformat(),
        "content-type": "application/json",
        "Nats-Msg-Id": event_id,
    }
    headers.update(overrides)
    return headers


async def forge(
    js: JetStreamContext, name: str, aggregate_id: str, body: bytes | dict[str, Any], **headers: str
) -> str:
    """Publish one message on ``name``'s subject (a dict body as JSON); returns its ce-id."""
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    sent = raw_headers(name, aggregate_id, **headers)
    await js.publish(declaration.spec(name).subject, data, headers=sent)
    return sent["ce-id"]
