"""The event documents come from the declaration and stay in step with it: the committed
AsyncAPI 3.0 document is what ``polysaga asyncapi`` generates, it is valid AsyncAPI 3.0
(checked against the specification's own JSON schema, from @asyncapi/specs), and its
payload schemas accept what producers send and refuse what the consumers dead-letter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml

from event_samples import sample
from polysaga.events import declaration
from polysaga.events.envelope import new_event, to_headers
from polysaga_tools import event_docs

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = Path(sys.executable).parent.parent / "share" / "asyncapi" / "3.0.0.json"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / event_docs.DOCUMENT).read_text())
    return document


def test_the_committed_documents_are_what_the_declaration_generates() -> None:
    assert event_docs.out_of_step(ROOT) == [], "run: .venv/bin/polysaga asyncapi"


def test_the_document_is_valid_asyncapi_3(committed: dict[str, Any]) -> None:
    if not ASYNCAPI_SCHEMA.is_file():
        pytest.fail(f"{ASYNCAPI_SCHEMA} is missing: run scripts/bootstrap.sh asyncapi-schema")
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(committed)


def test_every_event_has_its_channel_sender_and_receivers(committed: dict[str, Any]) -> None:
    channels, operations = committed["channels"], committed["operations"]
    for spec in declaration.EVENTS:
        assert channels[spec.name]["address"] == spec.subject
        assert operations[f"{spec.producer}.send.{spec.name}"]["action"] == "send"
        for consumer in spec.consumers:
            receive = operations[f"{consumer}.receive.{spec.name}"]
            assert receive["action"] == "receive"
            readable = {m["$ref"].rsplit("/", 1)[1] for m in receive["messages"]}
            assert readable == {f"{spec.name}.v{v}" for v in (spec.version, *spec.earlier)}
    receivers = {k for k, v in operations.items() if v["action"] == "receive"}
    assert len(receivers) == sum(len(spec.consumers) for spec in declaration.EVENTS)


def _validator(document: dict[str, Any], message_id: str, part: str) -> jsonschema.Validator:
    """A validator for one message's payload or headers, its $refs resolved in the document."""
    schema = document["components"]["messages"][message_id][part]
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", [spec.name for spec in declaration.EVENTS])
def test_what_a_producer_sends_fits_the_documented_message(
    committed: dict[str, Any], name: str
) -> None:
    spec = declaration.spec(name)
    event = new_event(sample(name))
    message_id = f"{name}.v{spec.version}"

    _validator(committed, message_id, "payload").validate(msgspec.to_builtins(event.data))
    _validator(committed, message_id, "headers").validate(to_headers(event))


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("OrderPlaced", "total", "-5.00"),
        ("OrderPlaced", "order_id", "order-1"),
        ("StockReserved", "items", "x"),
        ("PaymentProcessed", "surprise", 1),
        ("ProductCreated", "version", 0),
    ],
)
def test_what_the_consumers_dead_letter_the_document_refuses_too(
    committed: dict[str, Any], name: str, field: str, value: Any
) -> None:
    spec = declaration.spec(name)
    body = msgspec.to_builtins(new_event(sample(name)).data) | {field: value}

    validator = _validator(committed, f"{name}.v{spec.version}", "payload")
    assert not validator.is_valid(body)


def test_the_asyncapi_command_writes_checks_and_refuses_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from polysaga_tools.main import app

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    outside = runner.invoke(app, ["asyncapi", "--check"])
    assert outside.exit_code == 2 and "repository root" in outside.output

    readme = f"# x\n{event_docs.CATALOGUE_START}\nold\n{event_docs.CATALOGUE_END}\nrest\n"
    (tmp_path / "README.md").write_text(readme)
    stale = runner.invoke(app, ["asyncapi", "--check"])
    assert stale.exit_code == 1
    assert "docs/asyncapi.yaml" in stale.output and "README.md" in stale.output
    assert not (tmp_path / "docs").exists() and (tmp_path / "README.md").read_text() == readme

    assert runner.invoke(app, ["asyncapi"]).exit_code == 0
    assert runner.invoke(app, ["asyncapi", "--check"]).exit_code == 0
    assert (tmp_path / "docs/asyncapi.yaml").read_text() == event_docs.render()
    assert (tmp_path / "README.md").read_text().endswith(f"{event_docs.CATALOGUE_END}\nrest\n")
