"""``polysaga dead-letters``: list, show, replay and discard dead letters of a running stack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import nats
import typer
from rich.console import Console
from rich.table import Table

from polysaga.messaging.dead_letters import DeadLetter
from polysaga_tools.dead_letters import DeadLetterError, DeadLetterOffice, Replayed
from polysaga_tools.servers import ServerError
from polysaga_tools.stack import DEFAULT_STATE_FILE, load_state, nats_admin_login

app = typer.Typer(
    help="Dead letters: messages a consumer gave up on. List, show, replay or discard them.",
    no_args_is_help=True,
)
err = Console(stderr=True)
T = TypeVar("T")

AttachOption = Annotated[Path, typer.Option(help="The running stack's state file.")]
ServiceOption = Annotated[
    str | None, typer.Option("--service", help="Only the letters of this consuming service.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(attach: Path, work: Callable[[DeadLetterOffice], Awaitable[T]]) -> T:
    async def run() -> T:
        state = load_state(attach)
        nc = await nats.connect(state["nats"], **nats_admin_login(state), max_reconnect_attempts=2)
        try:
            return await work(DeadLetterOffice(nc.jetstream()))
        finally:
            await nc.close()

    try:
        return asyncio.run(run())
    except DeadLetterError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from exc
    except (ServerError, OSError, nats.errors.Error) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc


def letter_json(letter: DeadLetter, *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": letter.letter_id,
        "service": letter.service,
        "subject": letter.original_subject,
        "event_type": letter.event_type,
        "event_id": letter.event_id,
        "reason": letter.reason,
        "detail": letter.detail,
        "deliveries": letter.deliveries,
        "first_seen": letter.first_seen.isoformat(),
        "last_seen": letter.last_seen.isoformat(),
        "status": letter.status.value,
        "resolution": letter.resolution.to_json() if letter.resolution else None,
        "replay_of": letter.replay_of,
    }
    if full:
        body["headers"] = letter.headers
        body["payload"] = _payload(letter.payload)
    return body


def _payload(data: bytes) -> Any:
    """The body as JSON when it is JSON, else as text (a malformed letter may be neither)."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", errors="backslashreplace")


@app.command("list")
def list_letters(
    service: ServiceOption = None,
    as_json: JsonOption = False,
    attach: AttachOption = DEFAULT_STATE_FILE,
) -> None:
    """Every dead letter, oldest first, with why it was given up and what was done with it."""
    letters = _run(attach, lambda office: office.letters(service))
    if as_json:
        print(json.dumps([letter_json(letter) for letter in letters], indent=2))
        return
    table = Table(title=f"dead letters ({len(letters)})")
    for column in ("id", "service", "event", "reason", "tries", "last seen", "status"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            str(letter.letter_id),
            letter.service,
            letter.event_type or letter.original_subject,
            letter.reason,
            str(letter.deliveries),
            letter.last_seen.isoformat(timespec="seconds"),
            letter.status.value,
        )
    Console().print(table)


@app.command()
def show(
    letter_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The letter's id.")],
    as_json: JsonOption = False,
    attach: AttachOption = DEFAULT_STATE_FILE,
) -> None:
    """One letter: payload, headers, reason, delivery count, first and last seen."""
    body = letter_json(_run(attach, lambda office: office.letter(letter_id)), full=True)
    if as_json:
        print(json.dumps(body, indent=2))
        return
    out = Console()
    for key, value in body.items():
        if key in ("headers", "payload"):
            continue
        out.print(f"[bold]{key}:[/] {value}")
    out.print("[bold]headers:[/]")
    for key, value in body["headers"].items():
        out.print(f"  {key}: {value}")
    out.print("[bold]payload:[/]")
    out.print_json(json.dumps(body["payload"]))


@app.command()
def replay(
    letter_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", min=1, help="The letter to replay.")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every letter not yet replayed or discarded.")
    ] = False,
    service: ServiceOption = None,
    as_json: JsonOption = False,
    attach: AttachOption = DEFAULT_STATE_FILE,
) -> None:
    """Publish letters again to the subject their consumer reads; a consumer that had
    applied one already absorbs it (its inbox holds the event id)."""
    if (letter_id is None) == (not replay_all):
        err.print("[bold red]error:[/] give either a letter ID or --all")
        raise typer.Exit(code=2)

    async def work(office: DeadLetterOffice) -> list[Replayed]:
        if letter_id is None:
            return await office.replay_all(service)
        if service is not None and (await office.letter(letter_id)).service != service:
            raise DeadLetterError(f"dead letter {letter_id} is not one of {service}'s")
        return [await office.replay(letter_id)]

    replayed = _run(attach, work)
    if as_json:
        print(
            json.dumps(
                [{"id": r.letter.letter_id, "stream": r.stream, "seq": r.seq} for r in replayed]
            )
        )
        return
    for r in replayed:
        print(f"replayed {r.letter.letter_id} to {r.letter.original_subject} ({r.stream} #{r.seq})")
    if not replayed:
        print("nothing to replay")


@app.command()
def discard(
    letter_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The letter's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is not replayed (recorded).")],
    attach: AttachOption = DEFAULT_STATE_FILE,
) -> None:
    """Mark a letter as never to be replayed, recording why; the letter itself stays."""
    letter = _run(attach, lambda office: office.discard(letter_id, reason))
    print(f"discarded {letter.letter_id}: {reason}")
