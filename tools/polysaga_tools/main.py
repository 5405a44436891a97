"""``polysaga``: run the system locally, drive the demo, check the invariants."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from polysaga_tools import dead_letters_cli
from polysaga_tools.cluster.cli import app as cluster_app
from polysaga_tools.servers import ServerError
from polysaga_tools.stack import DEFAULT_STATE_FILE, LocalStack

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
app.add_typer(dead_letters_cli.app, name="dead-letters")
app.add_typer(cluster_app, name="cluster")
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


class SagaStyleChoice(StrEnum):
    CHOREOGRAPHY = "choreography"
    ORCHESTRATION = "orchestration"
    MIXED = "mixed"


def _described(exc: BaseException) -> str:
    """An error's message, with the request a transport error broke off (httpx's own message,
    such as "Server disconnected without sending a response.", names none)."""
    if isinstance(exc, httpx.RequestError):
        try:
            request = exc.request
        except RuntimeError:  # an error raised outside a request carries none
            return str(exc)
        return f"{exc} ({request.method} {request.url})"
    return str(exc)


StateFileOption = Annotated[
    Path, typer.Option("--state-file", help="Where the running stack is described (JSON).")
]


@app.command()
def up(
    state_file: StateFileOption = DEFAULT_STATE_FILE,
    data_dir: Annotated[Path, typer.Option(help="Where servers keep their data and logs.")] = Path(
        ".polysaga/data"
    ),
    postgres_url: Annotated[
        str | None,
        typer.Option(help="Use this PostgreSQL (needs CREATEDB) instead of starting one."),
    ] = None,
    nats_url: Annotated[
        str | None,
        typer.Option(help="Use this NATS server (JetStream on) instead of starting one."),
    ] = None,
    mongo_url: Annotated[
        str | None, typer.Option(help="Use this MongoDB instead of starting FerretDB.")
    ] = None,
    nats_sync_always: Annotated[
        bool, typer.Option(help="Run NATS with sync_interval: always (fsync before every ack).")
    ] = False,
    view: Annotated[bool, typer.Option(help="Show the live terminal view.")] = True,
    with_prometheus: Annotated[
        bool,
        typer.Option(
            "--with-prometheus",
            help="Also run Prometheus, scraping every service every second, with the alert rules.",
        ),
    ] = False,
    with_jaeger: Annotated[
        bool,
        typer.Option(
            "--with-jaeger",
            help="Also run Jaeger (in memory) and send every service's traces to it.",
        ),
    ] = False,
) -> None:
    """Run the whole system on this machine until Ctrl-C."""
    stack = LocalStack(
        data_dir,
        state_file,
        postgres_url=postgres_url,
        nats_url=nats_url,
        mongo_url=mongo_url,
        nats_sync_always=nats_sync_always,
        with_prometheus=with_prometheus,
        with_jaeger=with_jaeger,
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
    ready: dict[str, object] = {"ready": True, "state_file": str(stack.state_file)}
    if prometheus := stack.state()["prometheus"]:
        ready["prometheus"] = prometheus
    if jaeger := stack.state()["jaeger"]:
        ready["jaeger"] = jaeger["ui"]
    print(json.dumps(ready), flush=True)
    try:
        if view:
            from polysaga_tools.live_view import run_live_view

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


def _refuse_out_of_step(stale: Sequence[object], command: str) -> None:
    """For a generator's --check: name what is out of step and exit 1, if anything is."""
    for what in stale:
        # Not wrapped: a path stays whole, to copy.
        err.print(f"[red]out of step:[/] {what}", soft_wrap=True)
    if stale:
        err.print(f"regenerate with: polysaga {command}")
        raise typer.Exit(code=1)


@app.command()
def asyncapi(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if a committed file is not in step."),
    ] = False,
) -> None:
    """Write docs/asyncapi.yaml (AsyncAPI 3.0) and the README's event catalogue, both
    generated from the event declaration; run from the repository root."""
    from polysaga_tools import event_docs

    if not event_docs.README.is_file():
        raise _fail("no README.md here; run from the repository root")
    if check:
        _refuse_out_of_step(event_docs.out_of_step(), "asyncapi")
        print(f"{event_docs.DOCUMENT} and the README's catalogue are in step")
        return
    changed = event_docs.write()
    print(f"wrote {event_docs.DOCUMENT} and the README's catalogue ({len(changed)} changed)")


NATS_PERMISSIONS_FILE = Path("charts/polysaga/files/nats-permissions.json")


@app.command("nats-permissions")
def nats_permissions(
    write: Annotated[
        bool, typer.Option("--write", help=f"Write {NATS_PERMISSIONS_FILE} instead of printing.")
    ] = False,
) -> None:
    """Print each service's NATS permissions (JSON), derived from the event declaration; the
    chart templates its NATS users from the same file."""
    from polysaga.messaging.permissions import permissions_json

    if not write:
        print(permissions_json(), end="")
        return
    if not NATS_PERMISSIONS_FILE.parent.parent.is_dir():
        raise _fail(
            f"{NATS_PERMISSIONS_FILE.parent.parent} not found; run from the repository root"
        )
    NATS_PERMISSIONS_FILE.parent.mkdir(exist_ok=True)
    NATS_PERMISSIONS_FILE.write_text(permissions_json())
    err.print(f"wrote {NATS_PERMISSIONS_FILE}")


@app.command()
def dashboards(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if a committed file is not in step."),
    ] = False,
    into: Annotated[
        list[Path] | None,
        typer.Option(help="Directory to write into (repeatable); default: the two committed ones."),
    ] = None,
) -> None:
    """Write the Grafana dashboards (JSON) generated from polysaga_tools.dashboards."""
    from polysaga_tools import dashboards as generated

    directories = into or list(generated.OUTPUT_DIRECTORIES)
    missing = [d for d in directories if not d.is_dir()]
    if missing:
        raise _fail(
            f"no directory {', '.join(map(str, missing))}; run from the repository root or "
            "pass --into"
        )
    if check:
        _refuse_out_of_step(
            [p for d in directories for p in generated.differences(d)], "dashboards"
        )
        print(f"{len(generated.DASHBOARDS)} dashboards in step in {len(directories)} directories")
        return
    for directory in directories:
        for path in generated.write(directory):
            print(path)


def _print_report(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title="polysaga report")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key in ("invariants", "violations", "saga_styles"):
            continue
        table.add_row(key, str(value))
    styles = result.get("saga_styles") or {}
    assert isinstance(styles, dict)
    for style, counts in styles.items():
        ended = f"{counts['confirmed']} confirmed, {counts['cancelled']} cancelled"
        table.add_row(f"{style} sagas", f"{counts['orders']} ({ended})")
    invariants = result.get("invariants", {})
    assert isinstance(invariants, dict)
    for name, ok in invariants.items():
        table.add_row(name, "[green]holds[/]" if ok else "[red]VIOLATED[/]")
    Console().print(table)
    for violation in result.get("violations") or []:  # type: ignore[attr-defined]
        err.print(f"[red]violation:[/] {violation}")


@app.command()
def demo(
    orders: Annotated[
        int, typer.Option("--orders", min=1, max=100_000, help="Orders to place.")
    ] = 100,
    concurrency: Annotated[
        int, typer.Option(min=1, max=512, help="Orders in flight at once.")
    ] = 16,
    payment_failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of orders from accounts that cannot pay.")
    ] = 0.0,
    scarce_stock: Annotated[
        bool, typer.Option("--scarce-stock", help="Stock fewer units than are ordered.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed for the order mix.")] = 1,
    saga_style: Annotated[
        SagaStyleChoice,
        typer.Option(
            "--saga-style",
            help="Who runs each saga: the choreography, the orchestrator, or each order's"
            " drawn at random (mixed).",
        ),
    ] = SagaStyleChoice.CHOREOGRAPHY,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    attach: Annotated[
        Path | None, typer.Option(help="Use the stack this state file describes.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE.png",
            help="Also draw throughput, saga latency and order-view lag over time (PNG).",
        ),
    ] = None,
) -> None:
    """Place N orders, wait for every saga to end, check the invariants. Exit 0 only if all hold."""
    from polysaga_tools.demo import DemoPlan, run_demo

    if plot is not None:
        _check_writable_file(plot)
    plan = DemoPlan(
        orders, concurrency, payment_failure_rate, scarce_stock, seed, saga_style=saga_style.value
    )
    try:
        result = asyncio.run(
            _with_stack(attach, lambda state: run_demo(state, plan, sample=plot is not None))
        )
    except (ServerError, OSError, httpx.HTTPError, TimeoutError) as exc:
        raise _fail(_described(exc)) from exc
    body = result.as_json()
    _print_report(body, as_json)
    if plot is not None:
        from polysaga_tools.plot import plot_run

        title = f"polysaga demo: {result.placed} orders, concurrency {concurrency}"
        try:
            plot_run(result.samples, plot, title)
        except (OSError, ValueError) as exc:
            raise _fail(f"cannot write the plot {plot}: {exc}") from exc
        err.print(f"plot written to {plot}")
    if not result.report.ok:
        raise typer.Exit(code=1)


@app.command()
def check(
    attach: Annotated[Path, typer.Option(help="The running stack's state file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the invariants of a running stack over all its orders."""
    from polysaga_tools import invariants
    from polysaga_tools.read_side import check_read_side
    from polysaga_tools.stack import load_state
    from polysaga_tools.stack_access import stack_client

    async def run() -> dict[str, object]:
        state = load_state(attach)
        async with stack_client(state, timeout=10) as client:
            report = await invariants.check(client, state["services"])
            read_side = await check_read_side(client, state["services"], report.order_documents)
            report.merge(read_side.invariants, read_side.violations)
        return {
            "orders": report.orders,
            "confirmed": report.confirmed,
            "cancelled": report.cancelled,
            "unfinished": report.unfinished,
            "compensations": report.compensations,
            "dead_lettered": await invariants.dead_lettered(state["nats"], state.get("nats_admin")),
            "saga_styles": report.by_style,
            "invariants": report.invariants,
            "violations": report.violations[:20],
        }

    try:
        body = asyncio.run(run())
    except (ServerError, OSError, httpx.HTTPError) as exc:
        raise _fail(str(exc)) from exc
    _print_report(body, as_json)
    invariants_ok = body["invariants"]
    assert isinstance(invariants_ok, dict)
    if not all(invariants_ok.values()):
        raise typer.Exit(code=1)


@app.command()
def chaos(
    duration: Annotated[
        float, typer.Option("--duration", min=1, max=3600, help="Seconds of load and faults.")
    ] = 120,
    seed: Annotated[int, typer.Option(help="Seed of the fault schedule and the order mix.")] = 1,
    rate: Annotated[
        float, typer.Option(min=0.5, max=200, help="Orders started per second (open loop).")
    ] = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the stack with two instances of each consuming service under load, inject faults
    on a seeded schedule, then check every invariant. Exit 0 only if all hold and every
    kind of fault was injected."""
    import tempfile

    from polysaga_tools.chaos import ChaosPlan, run_chaos
    from polysaga_tools.chaos_view import LiveProgress, PlainProgress
    from polysaga_tools.faults import ScheduleError, minimum_duration_s

    if duration < minimum_duration_s():
        raise _fail(
            f"--duration {duration:g} is too short to inject every kind of fault;"
            f" the minimum is {minimum_duration_s():g}"
        )
    plan = ChaosPlan(duration_s=duration, seed=seed, rate_per_s=rate)
    data_dir = Path(tempfile.mkdtemp(prefix="polysaga-chaos-"))
    data_dir.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    try:
        if as_json or not sys.stdout.isatty():
            result = asyncio.run(run_chaos(plan, data_dir, PlainProgress()))
        else:
            with LiveProgress() as live:
                result = asyncio.run(run_chaos(plan, data_dir, live))
    except (ServerError, ScheduleError, OSError, httpx.HTTPError, TimeoutError) as exc:
        raise _fail(f"{exc} (logs in {data_dir / 'logs'})") from exc
    body = result.as_json()
    _print_report(body, as_json)
    if result.missing_kinds:
        err.print(f"[red]not injected:[/] {', '.join(result.missing_kinds)}")
    if not result.ok:
        err.print(f"logs kept in {data_dir / 'logs'}")
        raise typer.Exit(code=1)
    shutil.rmtree(data_dir, ignore_errors=True)


@app.command()
def rebuild(
    read_model: Annotated[
        str, typer.Argument(help="The read model to rebuild: order-view or sales.")
    ],
    attach: Annotated[
        Path, typer.Option(help="The running stack's state file.")
    ] = DEFAULT_STATE_FILE,
) -> None:
    """Rebuild a read model from event history into a fresh generation and swap it in;
    report whether the rebuilt one equals the one it replaced."""
    from polysaga.events.declaration import READ_MODELS
    from polysaga_tools.read_side import rebuild_and_compare
    from polysaga_tools.stack import load_state
    from polysaga_tools.stack_access import stack_client

    if read_model not in READ_MODELS:
        raise _fail(
            f"unknown read model {read_model!r}; the read models: {', '.join(sorted(READ_MODELS))}"
        )

    async def run() -> tuple[bool, str]:
        state = load_state(attach)
        if read_model not in state["services"]:
            raise ServerError(f"{read_model} is not running on this stack")
        async with stack_client(state, timeout=30) as client:
            return await rebuild_and_compare(client, state["services"][read_model])

    try:
        same, detail = asyncio.run(run())
    except (ServerError, OSError, httpx.HTTPError) as exc:
        raise _fail(str(exc)) from exc
    Console().print(
        ("[green]rebuilt:[/] " if same else "[red]rebuilt, but different:[/] ") + detail
    )
    if not same:
        raise typer.Exit(code=1)


@app.command()
def token(
    user: Annotated[str, typer.Option("--user", help="The user the token speaks for (its sub).")],
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="A role to grant (repeatable); operator reads everything."),
    ] = None,
    ttl: Annotated[
        int, typer.Option("--ttl", min=60, max=7 * 24 * 3600, help="Seconds until it expires.")
    ] = 3600,
    attach: Annotated[
        Path, typer.Option(help="The running stack's state file.")
    ] = DEFAULT_STATE_FILE,
) -> None:
    """Print a bearer token for the gateway, signed by the stack's local key (the key is new
    at every `polysaga up`, so a token lives no longer than the stack that issued it)."""
    import re

    from polysaga.api_types import ID_PATTERN
    from polysaga_tools.local_identity import LocalIdentity
    from polysaga_tools.stack import load_state

    if not re.match(ID_PATTERN, user):
        raise _fail(f"--user {user!r} is not a user id (letters, digits, '._:-', at most 64)")
    roles = role or []
    for name in roles:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name):
            raise _fail(f"--role {name!r} is not a role name")
    try:
        auth = load_state(attach).get("auth")
    except ServerError as exc:
        raise _fail(str(exc)) from exc
    if not auth or not auth.get("signing_key"):
        raise _fail(f"{attach} holds no signing key; was the stack started by this polysaga?")
    print(LocalIdentity.from_state(auth).token(user, roles, ttl_s=ttl))


@app.command()
def projections(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    attach: Annotated[
        Path, typer.Option(help="The running stack's state file.")
    ] = DEFAULT_STATE_FILE,
) -> None:
    """Every read model: its position in each stream it consumes, its lag, and whether it
    is live or catching up."""
    import nats
    from rich.table import Table

    from polysaga_tools.projections import overall, positions
    from polysaga_tools.stack import load_state, nats_admin_login

    async def run() -> dict[str, object]:
        state = load_state(attach)
        nc = await nats.connect(state["nats"], **nats_admin_login(state), max_reconnect_attempts=2)
        try:
            found = await positions(nc.jetstream())
        finally:
            await nc.close()
        return {
            model: {"state": overall(streams), "streams": [p.as_json() for p in streams]}
            for model, streams in found.items()
        }

    try:
        body = asyncio.run(run())
    except (ServerError, OSError, nats.errors.Error) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        print(json.dumps(body, indent=2))
        return
    table = Table(title="read models")
    for column in ("read model", "state", "stream", "position", "end", "pending", "lag (s)"):
        table.add_column(column)
    for model, entry in body.items():
        assert isinstance(entry, dict)
        for stream in entry["streams"]:
            table.add_row(
                model,
                stream["state"],
                stream["stream"],
                str(stream["position"]),
                str(stream["end"]),
                str(stream["pending"]),
                f"{stream['lag_s']:.1f}",
            )
    Console().print(table)


@app.command()
def bench(
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=10, max=3600, help="Seconds of load; every phase scales with it."
        ),
    ] = 120,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Draw throughput, latency and lag over time (PNG).")
    ] = None,
    attach: Annotated[
        Path | None, typer.Option(help="Use the stack this state file describes.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=10_000,
            help="Only one measured phase at this many sagas/s for --duration seconds: its"
            " latency, hops, CPU per saga of every process and costs per saga (profiling).",
        ),
    ] = None,
) -> None:
    """Benchmark: max sustainable sagas/s, latency and lag at 100/s, machine limits, a peer
    event store and the cost of NATS sync_interval: always (see BENCHMARKS.md)."""
    from polysaga_tools.bench import run_bench, run_one_phase

    if rate is not None:
        if plot is not None:
            raise _fail("--plot draws a whole run; leave it out with --rate")
        try:
            phase = asyncio.run(run_one_phase(rate, duration, attach))
        except (ServerError, OSError, httpx.HTTPError, TimeoutError) as exc:
            raise _fail(_described(exc)) from exc
        print(json.dumps(phase.as_json(), indent=2))
        return
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise _fail(f"--plot must name a .png file, not {plot}")
        _check_writable_file(plot)
    try:
        report = asyncio.run(run_bench(duration, attach, plot))
    except (ServerError, OSError, httpx.HTTPError, TimeoutError) as exc:
        raise _fail(_described(exc)) from exc
    body = report.as_json()
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        from polysaga_tools.bench import print_report

        print_report(report)


def _check_writable_file(path: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done for it."""
    if path.is_dir():
        raise _fail(f"{path} is a directory; give a file name such as {path / 'run.png'}")
    parent = path.parent
    if not parent.is_dir():
        raise _fail(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise _fail(f"cannot write {path}: directory {parent} is not writable")


async def _with_stack(attach: Path | None, work):  # type: ignore[no-untyped-def]
    """Run work against an attached stack, or against one started (and stopped) for it."""
    from polysaga_tools.stack import load_state

    if attach is not None:
        return await work(load_state(attach))
    import tempfile

    data_dir = Path(tempfile.mkdtemp(prefix="polysaga-"))
    stack = LocalStack(data_dir, data_dir / "stack.json")
    err.print(f"starting a stack in {data_dir} …")
    await stack.start()
    try:
        return await work(stack.state())
    finally:
        await stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
