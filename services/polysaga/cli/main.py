"""``polysaga``: run the system locally, drive the demo, check the invariants."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from polysaga.cli.servers import ServerError
from polysaga.cli.stack import DEFAULT_STATE_FILE, LocalStack

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


StateFileOption = Annotated[
    Path, typer.Option("--state-file", help="Where the running stack is described (JSON).")
]


@app.command()
def up(
    state_file: StateFileOption = DEFAULT_STATE_FILE,
    data_dir: Annotated[
        Path, typer.Option(help="Where servers keep their data and logs.")
    ] = Path(".polysaga/data"),
    postgres_url: Annotated[
        str | None, typer.Option(help="Use this PostgreSQL (needs CREATEDB) instead of starting one.")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option(help="Use this NATS server (JetStream on) instead of starting one.")
    ] = None,
    nats_sync_always: Annotated[
        bool, typer.Option(help="Run NATS with sync_interval: always (fsync before every ack).")
    ] = False,
    view: Annotated[bool, typer.Option(help="Show the live terminal view.")] = True,
) -> None:
    """Run the whole system on this machine until Ctrl-C."""
    stack = LocalStack(
        data_dir, state_file, postgres_url=postgres_url, nats_url=nats_url,
        nats_sync_always=nats_sync_always,
    )
    try:
        asyncio.run(_run_until_signal(stack, view=view and sys.stdout.isatty()))
    except ServerError as exc:
        raise _fail(str(exc)) from exc


async def _run_until_signal(stack: LocalStack, *, view: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stack.start()
    print(json.dumps({"ready": True, "state_file": str(stack.state_file)}), flush=True)
    try:
        if view:
            from polysaga.cli.live_view import run_live_view

            await run_live_view(stack, stop)
        else:
            await stop.wait()
    finally:
        await stack.stop()


@app.command()
def catalogue() -> None:
    """Print the event catalogue (Markdown), derived from the event declaration."""
    from polysaga.events.declaration import catalogue_markdown

    print(catalogue_markdown())
