"""Port-forwards from 127.0.0.1 to the cluster's Services that follow their pods: each is a
``kubectl port-forward`` to one ready pod behind the Service, and is moved to another as soon
as that pod is terminating or gone (deleted, rolled by an upgrade), or fails its readiness
probe while another pod is ready.
``kubectl port-forward svc/…`` alone picks one pod at its start and keeps forwarding into it
after it is gone, so every connection fails until it notices.

Run by ``cluster up`` as ``python -m polysaga_tools.cluster.forwards PLAN.json`` and stopped
by PID on ``down``; SIGTERM stops every forward it runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

# How often the ready endpoints are read (one kubectl call for every forward of a namespace).
REFRESH_S = 2.0
# A forward whose kubectl exited is started again no sooner than this.
RESTART_S = 1.0


@dataclass(frozen=True)
class Forward:
    name: str
    namespace: str
    service: str
    # The Service's port; the forward reaches the pod port its endpoints name for it.
    port: int
    local_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"


@dataclass(frozen=True)
class Backend:
    """The pod a forward reaches, and on which port."""

    pod: str
    uid: str
    port: int


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


def endpoints(forward: Forward, listing: Mapping[str, Any]) -> dict[Backend, bool]:
    """The pods behind ``forward``'s Service port that are not terminating, each with whether
    it is ready, from a listing of the namespace's Services and EndpointSlices (``kubectl get
    services,endpointslices -o json``); the pod port is the one the Service port is named for."""
    items = listing.get("items", [])
    services = [
        i for i in items if i["kind"] == "Service" and i["metadata"]["name"] == forward.service
    ]
    if not services:
        return {}
    port_names = [
        p.get("name", "") for p in services[0]["spec"]["ports"] if p["port"] == forward.port
    ]
    if not port_names:
        return {}
    found: dict[Backend, bool] = {}
    for item in items:
        labels = item["metadata"].get("labels") or {}
        if item["kind"] != "EndpointSlice":
            continue
        if labels.get("kubernetes.io/service-name") != forward.service:
            continue
        ports = [p["port"] for p in item.get("ports") or [] if p.get("name", "") == port_names[0]]
        if not ports:
            continue
        for endpoint in item.get("endpoints") or []:
            conditions = endpoint.get("conditions", {})
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod" and not conditions.get("terminating"):
                backend = Backend(ref["name"], ref.get("uid", ""), ports[0])
                found[backend] = found.get(backend, False) or bool(conditions.get("ready"))
    return dict(sorted(found.items(), key=lambda item: item[0].pod))


def ready_backends(forward: Forward, listing: Mapping[str, Any]) -> list[Backend]:
    """The pods that serve ``forward``'s Service port now (ready, not terminating), by name."""
    return [b for b, ready in endpoints(forward, listing).items() if ready]


def choose(current: Backend | None, found: Mapping[Backend, bool]) -> Backend | None:
    """The pod a forward should reach: the current one while it is ready, or while it still
    exists and no other is ready (a probe timing out on a loaded machine is no reason to cut
    the only way in); otherwise the first ready pod; None while there is none."""
    ready = [b for b, is_ready in found.items() if is_ready]
    if current is not None and current in found and (found[current] or not ready):
        return current
    return ready[0] if ready else None


def _argv(plan: ForwardPlan, forward: Forward, backend: Backend) -> list[str]:
    return [
        plan.kubectl,
        f"--kubeconfig={plan.kubeconfig}",
        "-n",
        forward.namespace,
        "port-forward",
        "--address=127.0.0.1",
        f"pod/{backend.pod}",
        f"{forward.local_port}:{backend.port}",
    ]


def _listings(plan: ForwardPlan) -> dict[str, Any] | None:
    """Every namespace's Services and EndpointSlices; None when the API did not answer."""
    listings: dict[str, Any] = {}
    for namespace in sorted({f.namespace for f in plan.forwards}):
        try:
            done = subprocess.run(
                [
                    plan.kubectl, f"--kubeconfig={plan.kubeconfig}", "-n", namespace,
                    "get", "services,endpointslices", "-o", "json",
                ],
                capture_output=True, check=False, timeout=30,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0:
            return None
        listings[namespace] = json.loads(done.stdout)
    return listings


def run(plan: ForwardPlan) -> None:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running: dict[str, tuple[Backend, subprocess.Popen[bytes]]] = {}
    started: dict[str, float] = {}
    listings: dict[str, Any] | None = None
    refreshed = 0.0
    try:
        while not stopping:
            if time.monotonic() - refreshed >= REFRESH_S:
                listings = _listings(plan) or listings
                refreshed = time.monotonic()
            for forward in plan.forwards:
                if listings is None:
                    break
                found = endpoints(forward, listings[forward.namespace])
                current = running.get(forward.name)
                wanted = choose(current[0] if current else None, found)
                if current is not None:
                    backend, proc = current
                    if proc.poll() is None and backend == wanted:
                        continue
                    # Its pod is gone, terminating, or another is ready while it is not (or
                    # kubectl exited): move it.
                    _end(proc)
                    del running[forward.name]
                if wanted and time.monotonic() - started.get(forward.name, 0.0) >= RESTART_S:
                    started[forward.name] = time.monotonic()
                    proc = subprocess.Popen(
                        _argv(plan, forward, wanted), stdout=sys.stdout, stderr=sys.stderr
                    )
                    running[forward.name] = (wanted, proc)
            time.sleep(0.2)
    finally:
        for _, proc in running.values():
            _end(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    run(ForwardPlan.read(Path(sys.argv[1])))
