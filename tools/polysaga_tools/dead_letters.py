"""The operator's side of dead letters: list them, show one, replay them to the subject their
consumer reads, or discard one with a reason (``polysaga dead-letters``).

Letters are read from the ``DEADLETTER`` stream as the stack's NATS admin; what was done with
each is written to the ``DEADLETTER_RESOLUTIONS`` key-value bucket (key: the letter's id), so
the letter stays in the stream as it was. A replay publishes the original body and headers
under a new ``Nats-Msg-Id``: every consumer of that subject receives it again, and the ones
that had already applied it find its event id in their inbox and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from polysaga.events import declaration
from polysaga.messaging.dead_letters import RESOLUTIONS_BUCKET, DeadLetter, Resolution, Status
from polysaga_tools.delivery_facts import read_stream


class DeadLetterError(Exception):
    """A request an operator made that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    stream: str  # where the replay was stored, and at which sequence
    seq: int


def consuming_services() -> list[str]:
    """The services that can dead-letter anything: those that consume."""
    return sorted(s for s in declaration.services() if declaration.consumed_by(s))


def _check_service(service: str | None) -> None:
    if service is not None and service not in consuming_services():
        raise DeadLetterError(
            f"unknown service {service!r}; services that consume: {', '.join(consuming_services())}"
        )


class DeadLetterOffice:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._bucket: KeyValue | None = None

    async def letters(self, service: str | None = None) -> list[DeadLetter]:
        """Every letter (of one service's consumers, if named), oldest first."""
        _check_service(service)
        prefix = declaration.DEAD_LETTER_PREFIX
        subjects = f"{prefix}.{service}.>" if service else f"{prefix}.>"
        try:
            messages = await read_stream(self._js, declaration.DEAD_LETTER_STREAM, subjects)
        except NotFoundError:
            return []  # no consumer has started yet, so no letter can exist
        resolutions = await self._resolutions()
        return [
            DeadLetter.from_message(
                m.metadata.sequence.stream, m.subject, m.headers, m.data, m.metadata.timestamp
            ).with_resolution(resolutions.get(m.metadata.sequence.stream))
            for m in messages
        ]

    async def letter(self, letter_id: int) -> DeadLetter:
        try:
            raw = await self._js.get_msg(declaration.DEAD_LETTER_STREAM, letter_id)
        except NotFoundError as exc:
            raise DeadLetterError(f"no dead letter {letter_id}") from exc
        if raw.subject is None or raw.seq is None:
            raise DeadLetterError(f"no dead letter {letter_id}")
        letter = DeadLetter.from_message(
            raw.seq, raw.subject, raw.headers, raw.data or b"", raw.time or datetime.now(UTC)
        )
        return letter.with_resolution(await self._resolution(letter_id))

    async def replay(self, letter_id: int) -> Replayed:
        """Publish a letter's message again; refused for a discarded one. A letter replayed
        before may be replayed again: whoever applied it already absorbs it."""
        letter = await self.letter(letter_id)
        if letter.status is Status.DISCARDED:
            assert letter.resolution is not None
            raise DeadLetterError(
                f"dead letter {letter_id} was discarded ({letter.resolution.reason});"
                " it is not replayed"
            )
        return await self._replay(letter)

    async def replay_all(self, service: str | None = None) -> list[Replayed]:
        """Replay every letter nobody has acted on yet (replayed and discarded ones stay)."""
        return [
            await self._replay(letter)
            for letter in await self.letters(service)
            if letter.status is Status.DEAD
        ]

    async def discard(self, letter_id: int, reason: str) -> DeadLetter:
        if not reason.strip():
            raise DeadLetterError("a discard needs a reason")
        letter = await self.letter(letter_id)
        if letter.status is not Status.DEAD:
            raise DeadLetterError(f"dead letter {letter_id} is already {letter.status.value}")
        resolution = Resolution(Status.DISCARDED, datetime.now(UTC), reason=reason.strip())
        await self._record(letter_id, resolution)
        return letter.with_resolution(resolution)

    async def _replay(self, letter: DeadLetter) -> Replayed:
        ack = await self._js.publish(
            letter.original_subject, letter.payload, headers=letter.replay_headers()
        )
        replays = (letter.resolution.replays if letter.resolution else 0) + 1
        resolution = Resolution(Status.REPLAYED, datetime.now(UTC), replays=replays)
        await self._record(letter.letter_id, resolution)
        return Replayed(letter.with_resolution(resolution), ack.stream, ack.seq)

    # --- the resolutions bucket ---------------------------------------------------------

    async def _kv(self) -> KeyValue:
        if self._bucket is None:
            try:
                self._bucket = await self._js.key_value(RESOLUTIONS_BUCKET)
            except BucketNotFoundError:
                replicas = 1
                try:
                    info = await self._js.stream_info(declaration.DEAD_LETTER_STREAM)
                    replicas = info.config.num_replicas or 1
                except NotFoundError:
                    pass
                self._bucket = await self._js.create_key_value(
                    KeyValueConfig(
                        bucket=RESOLUTIONS_BUCKET,
                        description="What operators did with each dead letter",
                        history=10,
                        storage=StorageType.FILE,
                        replicas=replicas,
                    )
                )
        return self._bucket

    async def _record(self, letter_id: int, resolution: Resolution) -> None:
        kv = await self._kv()
        await kv.put(str(letter_id), msgspec.json.encode(resolution.to_json()))

    async def _resolution(self, letter_id: int) -> Resolution | None:
        kv = await self._kv()
        try:
            entry = await kv.get(str(letter_id))
        except KeyNotFoundError:
            return None
        return Resolution.from_json(msgspec.json.decode(entry.value or b"{}"))

    async def _resolutions(self) -> dict[int, Resolution]:
        kv = await self._kv()
        try:
            keys = await kv.keys()
        except NoKeysError:
            return {}
        found = {}
        for key in keys:
            resolution = await self._resolution(int(key))
            if resolution is not None:
                found[int(key)] = resolution
        return found
