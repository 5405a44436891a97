"""Dead letters: what a consumer records when it gives up on a message, and how a letter is
read back and turned into a replay.

A letter is the original message (body and headers unchanged) published to
``deadletter.<service>.<original subject>`` in the ``DEADLETTER`` stream, with headers saying
why (reason and detail), how often it was tried, where it came from, and when it was first
and last seen. Its id is its sequence in that stream. What an operator decided about it
(replayed, discarded and why) is kept beside it in a key-value bucket, so the letter itself
stays as evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from polysaga.events import declaration
from polysaga.events.envelope import NATS_MSG_ID

REASON = "polysaga-dead-letter-reason"
DETAIL = "polysaga-dead-letter-detail"
DELIVERIES = "polysaga-deliveries"
ORIGINAL_SUBJECT = "polysaga-original-subject"
FIRST_SEEN = "polysaga-first-seen"
LAST_SEEN = "polysaga-last-seen"
# On a replayed message: the letter it came from (a replay that fails again names it).
REPLAY_OF = "polysaga-replay-of"
LETTER_HEADERS = (REASON, DETAIL, DELIVERIES, ORIGINAL_SUBJECT, FIRST_SEEN, LAST_SEEN)

DETAIL_MAX_CHARS = 500
# The key-value bucket of operators' decisions, written by ``polysaga dead-letters`` only.
RESOLUTIONS_BUCKET = "DEADLETTER_RESOLUTIONS"


class Reason(StrEnum):
    EXHAUSTED = "exhausted"  # the handler failed on every delivery allowed
    MALFORMED = "malformed"  # not a well-formed event: it can never succeed as it is
    UNSUPPORTED_VERSION = "unsupported_version"  # a version (or type) this consumer cannot read
    REJECTED = "rejected"  # refused for good by what the handler relies on (an SMTP 5xx)


def letter_headers(
    original: Mapping[str, str],
    *,
    service: str,
    subject: str,
    stream: str,
    stream_seq: int,
    reason: Reason,
    detail: str,
    deliveries: int,
    entered_stream_at: datetime | None,
    now: datetime,
) -> dict[str, str]:
    """The headers of the letter for one message. Its Nats-Msg-Id names the stream message,
    so a consumer that crashes after publishing the letter and dead-letters the message again
    is deduplicated, while a replay of it (a new message) that fails again gets a letter of
    its own."""
    headers = {k: v for k, v in original.items() if k not in LETTER_HEADERS}
    first_seen = original.get(FIRST_SEEN) or (entered_stream_at or now).isoformat()
    headers.update(
        {
            NATS_MSG_ID: f"{service}:{stream}:{stream_seq}",
            REASON: reason.value,
            DETAIL: header_text(detail),
            DELIVERIES: str(deliveries),
            ORIGINAL_SUBJECT: subject,
            FIRST_SEEN: first_seen,
            LAST_SEEN: now.isoformat(),
        }
    )
    return headers


def header_text(text: str) -> str:
    """``text`` as one header line: bounded, printable (an exception's text may hold a
    newline, which would end the header)."""
    return "".join(c if c.isprintable() else " " for c in text[:DETAIL_MAX_CHARS])


class Status(StrEnum):
    DEAD = "dead"  # waiting for an operator
    REPLAYED = "replayed"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class Resolution:
    """What an operator did with a letter."""

    status: Status
    at: datetime
    reason: str | None = None  # why it was discarded
    replays: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "replays": self.replays,
        }

    @staticmethod
    def from_json(data: Mapping[str, object]) -> Resolution:
        return Resolution(
            Status(str(data["status"])),
            datetime.fromisoformat(str(data["at"])),
            None if data.get("reason") is None else str(data["reason"]),
            int(str(data.get("replays", 0))),
        )


@dataclass(frozen=True)
class DeadLetter:
    letter_id: int  # its sequence in the dead-letter stream
    service: str  # the consumer that gave up
    original_subject: str
    event_type: str  # the ce-type, or "" for a message without one
    event_id: str
    reason: str
    detail: str
    deliveries: int
    first_seen: datetime
    last_seen: datetime
    headers: dict[str, str]
    payload: bytes
    resolution: Resolution | None = None

    @property
    def status(self) -> Status:
        return self.resolution.status if self.resolution else Status.DEAD

    @staticmethod
    def from_message(
        seq: int,
        subject: str,
        headers: Mapping[str, str] | None,
        payload: bytes,
        stored_at: datetime,
    ) -> DeadLetter:
        """A letter read back from the stream. Letters written before a header existed
        fall back to what the stream knows (its subject, its time)."""
        h = dict(headers or {})
        prefix = f"{declaration.DEAD_LETTER_PREFIX}."
        service, _, rest = subject.removeprefix(prefix).partition(".")
        stored = stored_at if stored_at.tzinfo else stored_at.replace(tzinfo=UTC)
        return DeadLetter(
            letter_id=seq,
            service=service,
            original_subject=h.get(ORIGINAL_SUBJECT, rest),
            event_type=h.get("ce-type", ""),
            event_id=h.get("ce-id", ""),
            reason=h.get(REASON, "unknown"),
            detail=h.get(DETAIL, ""),
            deliveries=_int(h.get(DELIVERIES)),
            first_seen=_time(h.get(FIRST_SEEN)) or stored,
            last_seen=_time(h.get(LAST_SEEN)) or stored,
            headers=h,
            payload=payload,
        )

    @property
    def replay_of(self) -> int | None:
        """The letter this one's message was a replay of, if it was one."""
        value = _int(self.headers.get(REPLAY_OF))
        return value or None

    def with_resolution(self, resolution: Resolution | None) -> DeadLetter:
        return replace(self, resolution=resolution)

    def replay_headers(self) -> dict[str, str]:
        """The original message's headers again, under a new Nats-Msg-Id: the server must
        not drop the replay as a duplicate of the original (its inbox is what makes a
        second application harmless)."""
        headers = {k: v for k, v in self.headers.items() if k not in LETTER_HEADERS}
        headers[NATS_MSG_ID] = f"replay:{self.letter_id}:{uuid.uuid4()}"
        headers[REPLAY_OF] = str(self.letter_id)
        headers[FIRST_SEEN] = self.first_seen.isoformat()
        return headers


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
