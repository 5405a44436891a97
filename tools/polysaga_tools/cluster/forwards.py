"""Port-forwards from 127.0.0.1 into the cluster that outlive the pods behind them: one
``kubectl port-forward`` per target, started again whenever it exits (a forward to a Service
follows one pod; when chaos kills that pod, the next forward finds the new one).

Run by ``cluster up`` as ``python -m polysaga_tools.cluster.forwards PLAN.json`` and stopped
by PID on ``down``; SIGTERM stops every forward it runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType


@dataclass(frozen=True)
class Forward:
    name: str
    namespace: str
    # kubectl's resource form: svc/polysaga-order, pod/order-db-0.
    target: str
    remote_port: int
    local_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"


@dataclass(frozen=True)
class ForwardPlan:
    kubectl: str
    kubeconfig: str
    forwards: list[Forward]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> ForwardPlan:
        body = json.loads(path.read_text())
        return cls(body["kubectl"], body["kubeconfig"], [Forward(**f) for f in body["forwards"]])


def _argv(plan: ForwardPlan, forward: Forward) -> list[str]:
    return [
        plan.kubectl,
        f"--kubeconfig={plan.kubeconfig}",
        "-n",
        forward.namespace,
        "port-forward",
        "--address=127.0.0.1",
        forward.target,
        f"{forward.local_port}:{forward.remote_port}",
    ]


def run(plan: ForwardPlan) -> None:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running: dict[str, subprocess.Popen[bytes]] = {}
    retry_at: dict[str, float] = {}
    try:
        while not stopping:
            now = time.monotonic()
            for forward in plan.forwards:
                proc = running.get(forward.name)
                if proc is not None and proc.poll() is None:
                    continue
                if now < retry_at.get(forward.name, 0.0):
                    continue
                running[forward.name] = subprocess.Popen(
                    _argv(plan, forward), stdout=sys.stdout, stderr=sys.stderr
                )
                # A forward that fails at once (its pod is not back yet) is tried again soon.
                retry_at[forward.name] = now + 1.0
            time.sleep(0.2)
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in running.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    run(ForwardPlan.read(Path(sys.argv[1])))
