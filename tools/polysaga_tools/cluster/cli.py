"""``polysaga cluster up`` and ``polysaga cluster down``."""

from __future__ import annotations

import json
import shlex
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from polysaga_tools.cluster.host import ClusterExists
from polysaga_tools.cluster.layout import REGISTRY, ClusterLayout
from polysaga_tools.servers import ServerError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
err = Console(stderr=True)

DEFAULT_DATA_DIR = Path(".polysaga/cluster")
DEFAULT_STATE_FILE = Path(".polysaga/cluster.json")

StateFile = Annotated[
    Path, typer.Option("--state-file", help="Where the running cluster is described (JSON).")
]
DataDir = Annotated[
    Path, typer.Option("--data-dir", help="The cluster's own directory; `down` removes it.")
]


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


_STARTED = time.monotonic()


def _say(message: str) -> None:
    err.print(f"[cyan]cluster[/] {time.monotonic() - _STARTED:6.1f} s: {message}")


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(path)


@app.command()
def up(
    state_file: StateFile = DEFAULT_STATE_FILE,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    node_only: Annotated[
        bool, typer.Option("--node-only", help="Bring up the node only, without the application.")
    ] = False,
) -> None:
    """Bring up a single-node Kubernetes here, build and push the images, deploy the system
    through skaffold's local profile, and return once every pod is Ready, leaving it running
    with port-forwards on 127.0.0.1. Ctrl-C (or an error) undoes everything."""
    from polysaga_tools.cluster import deploy, identity, node

    layout = ClusterLayout(data_dir.resolve())
    started = time.monotonic()
    # SIGTERM as Ctrl-C: either one takes down what was brought up so far.
    signal.signal(signal.SIGTERM, _interrupted)
    state: dict[str, Any] = {}
    try:
        starter = node.NodeStarter(layout, _say)
        starter.up()
        identity.ensure(layout)
        if not node_only:
            _say("images of the third-party servers")
            deploy.build_server_images(layout)
            _say("skaffold run -p local (the project's images, the operator, the application)")
            deploy.skaffold(layout, "run")
            _say("waiting for every pod to be Ready")
            deploy.wait_all_ready(layout)
            _say("port-forwards on 127.0.0.1")
            state = deploy.start_forwards(layout, starter.ledger)
    except (KeyboardInterrupt, ServerError, OSError) as exc:
        if isinstance(exc, KeyboardInterrupt):
            _say("interrupted: taking down what was brought up")
        else:
            err.print(f"[bold red]error:[/] {exc}")
        if not isinstance(exc, ClusterExists):
            try:
                node.down(layout, _say)
            except (ServerError, OSError) as cleanup:
                err.print(f"[bold red]cleanup failed:[/] {cleanup}")
        raise typer.Exit(code=130 if isinstance(exc, KeyboardInterrupt) else 2) from exc
    state["kubernetes"] = {
        "kubeconfig": str(layout.admin_kubeconfig),
        "namespace": "polysaga",
        "data_dir": str(layout.root),
        "registry": REGISTRY,
        "docker_host": layout.docker_host,
    }
    write_state(state_file, state)
    print(
        json.dumps(
            {"ready": True, "state_file": str(state_file), "seconds": node.wait_seconds(started)}
        ),
        flush=True,
    )


@app.command()
def down(
    state_file: StateFile = DEFAULT_STATE_FILE,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Stop everything `up` started and remove what it created: processes, mounts, the
    bridge, iptables rules, cgroups and the cluster's data."""
    from polysaga_tools.cluster import node

    root = data_dir
    if state_file.exists():
        try:
            root = Path(json.loads(state_file.read_text())["kubernetes"]["data_dir"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _fail(f"{state_file} is not a cluster state file") from exc
    try:
        removed = node.down(ClusterLayout(root.resolve()), _say)
    except (ServerError, OSError) as exc:
        raise _fail(str(exc)) from exc
    state_file.unlink(missing_ok=True)
    _say("down" if removed else f"no cluster at {root}")


@app.command()
def env(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Print the environment for skaffold, helm, kubectl and docker on the local cluster, as
    shell exports: eval "$(polysaga cluster env)"."""
    from polysaga_tools.cluster.deploy import environment

    layout = ClusterLayout(data_dir.resolve())
    if not layout.admin_kubeconfig.exists():
        raise _fail(f"no cluster at {data_dir}; run polysaga cluster up")
    for key, value in environment(layout).items():
        print(f"export {key}={shlex.quote(value)}")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)
