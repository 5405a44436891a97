"""Starting the cluster's daemons (each in the cluster's cgroup, its output in a log file,
its PID in the ledger at once) and stopping them by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from polysaga_tools.cluster.host import join_daemons_cgroup
from polysaga_tools.cluster.ledger import Ledger, ProcessRecord, process_start_time
from polysaga_tools.servers import ServerError


def start(
    ledger: Ledger,
    name: str,
    argv: list[str],
    logs: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches `up`, which stops it in order.
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    ledger.add_process(name, proc.pid, log)
    join_daemons_cgroup(proc.pid)
    return proc


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    log: Path,
    what: str,
    timeout_s: float,
    interval_s: float = 0.5,
) -> None:
    """Poll ``ready`` until it holds; fail with the log's tail if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if ready():
            return
        time.sleep(interval_s)
    raise ServerError(f"{what} was not ready within {timeout_s:.0f} s:\n{log_tail(log)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours still answers signal 0; it has exited all the same.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _same_process(record: ProcessRecord) -> bool:
    """The PID still names the process we started (not a later one that reused the PID)."""
    return process_start_time(record.pid) == record.started != 0


def stop(*records: ProcessRecord, timeout_s: float = 20) -> None:
    """SIGTERM to each at once, then SIGKILL to those still running after ``timeout_s``."""
    running = [r for r in records if _alive(r.pid) and _same_process(r)]
    for record in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running and time.monotonic() < deadline:
        running = [r for r in running if _alive(r.pid)]
        time.sleep(0.1)
    for record in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running and time.monotonic() < deadline:
        running = [r for r in running if _alive(r.pid)]
        time.sleep(0.1)
    if running:
        raise ServerError(f"{', '.join(r.name for r in running)} did not stop")
