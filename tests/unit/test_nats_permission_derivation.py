"""The NATS permissions derived from the declaration: what each service may do, and the
chart's copy of them is the generated one."""

from __future__ import annotations

import json
from pathlib import Path

from polysaga.events import declaration
from polysaga.messaging.permissions import all_permissions, permissions_json

CHART_FILE = Path(__file__).resolve().parents[2] / "charts/polysaga/files/nats-permissions.json"


def test_chart_file_is_the_generated_one() -> None:
    assert CHART_FILE.read_text() == permissions_json(), (
        "charts/polysaga/files/nats-permissions.json is stale:"
        " run `polysaga nats-permissions --write`"
    )
    assert set(json.loads(CHART_FILE.read_text())) == declaration.services()


def test_event_subjects_are_published_only_by_their_producer() -> None:
    permissions = all_permissions()
    for event in declaration.EVENTS:
        publishers = [s for s, p in permissions.items() if event.subject in p["publish"]["allow"]]
        assert publishers == [event.producer], event.name


def test_no_wildcard_reaches_beyond_a_service_own_names() -> None:
    for service, p in all_permissions().items():
        for subject in p["publish"]["allow"]:
            if subject.endswith(">"):
                assert subject in (
                    f"deadletter.{service}.>",
                    *(f"$JS.ACK.{c.stream}.{service}.>" for c in declaration.consumed_by(service)),
                ), (service, subject)
            assert "*" not in subject, (service, subject)
        assert p["subscribe"]["allow"] == [f"_INBOX.{service}.>"]


def test_only_a_stream_owner_may_reconfigure_it() -> None:
    for service, p in all_permissions().items():
        updates = {s.rsplit(".", 1)[1] for s in p["publish"]["allow"] if ".STREAM.UPDATE." in s}
        owned = {c.stream for c in declaration.CONTEXTS if c.producer == service}
        if declaration.consumed_by(service):
            owned.add(declaration.DEAD_LETTER_STREAM)
        assert updates == owned, service
        assert not any(".DELETE." in s and ".STREAM." in s for s in p["publish"]["allow"])


def test_consumer_api_only_on_consumed_streams_and_own_names() -> None:
    for service, p in all_permissions().items():
        consumed = {c.stream for c in declaration.consumed_by(service)}
        for subject in p["publish"]["allow"]:
            if subject.startswith("$JS.API.CONSUMER."):
                *_, stream, name = subject.split(".")
                assert stream in consumed, (service, subject)
                assert name in (service, f"{service}-replay"), (service, subject)
