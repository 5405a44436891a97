"""The application on the node: the third-party servers' images into the registry,
``skaffold run -p local`` (the project's images, the operator chart, the application chart),
every pod Ready, then port-forwards on 127.0.0.1 and a state file of the same shape as
``polysaga up``'s, so ``demo``, ``check``, ``bench`` and ``chaos`` attach unchanged."""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from polysaga_tools.cluster import identity, images, processes
from polysaga_tools.cluster.forwards import Forward, ForwardPlan
from polysaga_tools.cluster.layout import REGISTRY, ClusterLayout
from polysaga_tools.cluster.ledger import Ledger
from polysaga_tools.cluster.node import kubectl
from polysaga_tools.servers import ServerError, find_binary, free_port

NAMESPACE = "polysaga"
OPERATOR_NAMESPACE = "polysaga-system"
RELEASE = "polysaga"
NATS_ADMIN_USER = "polysaga-admin"
REPO = Path(__file__).resolve().parents[3]
KUBE_CONTEXT = "polysaga-local"


def environment(layout: ClusterLayout) -> dict[str, str]:
    """What skaffold, helm, kubectl and docker need to work on this cluster (also printed by
    ``polysaga cluster env`` for a shell)."""
    return {
        "KUBECONFIG": str(layout.admin_kubeconfig),
        "DOCKER_HOST": layout.docker_host,
        "SKAFFOLD_DEFAULT_REPO": REGISTRY,
        # Nothing here may phone home: no update check, no survey, no metrics.
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
        "SKAFFOLD_COLLECT_METRICS": "false",
        "DOCKER_BUILDKIT": "0",
        # The gateway's trust in the cluster's signing key (skaffold.yaml, profile local).
        "POLYSAGA_CLUSTER_AUTH_VALUES": str(identity.chart_values_file(layout)),
    }


def build_server_images(layout: ClusterLayout) -> None:
    share = images.cluster_share()
    images.import_base(layout, images.POSTGRES_BASE_IMAGE, share / "rootfs-postgres.tar")
    for image in images.server_images():
        images.build_and_push(layout, image)


def skaffold(layout: ClusterLayout, *args: str, timeout_s: float = 3600) -> None:
    """``skaffold <args> -p local`` from the repository, its output in the cluster's logs."""
    log = layout.logs / "skaffold.log"
    env = {**os.environ, **environment(layout), "PATH": _path()}
    with log.open("ab") as out:
        done = subprocess.run(
            [find_binary("skaffold"), *args, "-p", "local", f"--kube-context={KUBE_CONTEXT}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=timeout_s,
        )
    if done.returncode != 0:
        raise ServerError(f"skaffold {args[0]} -p local failed:\n{processes.log_tail(log, 40)}")


def _path() -> str:
    """The venv's bin first: skaffold runs helm, and docker by its client library."""
    return f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


def wait_all_ready(layout: ClusterLayout, timeout_s: float = 900) -> None:
    """Every pod of the application and the operator Ready (databases included)."""
    deadline = time.monotonic() + timeout_s
    while True:
        not_ready = _pods_not_ready(layout)
        if not not_ready:
            return
        if time.monotonic() > deadline:
            raise ServerError(f"pods not Ready after {timeout_s:.0f} s: {', '.join(not_ready)}")
        time.sleep(2)


def _pods_not_ready(layout: ClusterLayout) -> list[str]:
    waiting: list[str] = []
    for namespace in (NAMESPACE, OPERATOR_NAMESPACE):
        pods = json.loads(kubectl(layout, "get", "pods", "-n", namespace, "-o", "json"))["items"]
        if not pods:
            waiting.append(f"{namespace}/(no pods yet)")
        for pod in pods:
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if pod["status"].get("phase") == "Succeeded":
                continue
            if conditions.get("Ready") != "True":
                waiting.append(f"{namespace}/{pod['metadata']['name']}")
    # The operator makes the database StatefulSets; until each ServiceDatabase says Ready, the
    # set of pods above is not yet complete.
    databases = json.loads(kubectl(layout, "get", "sdb", "-n", NAMESPACE, "-o", "json"))["items"]
    for database in databases:
        if database.get("status", {}).get("phase") != "Ready":
            waiting.append(f"servicedatabase/{database['metadata']['name']}")
    return waiting


def _secret(layout: ClusterLayout, name: str) -> dict[str, str]:
    body = json.loads(kubectl(layout, "get", "secret", "-n", NAMESPACE, name, "-o", "json"))
    return {k: base64.b64decode(v).decode() for k, v in body.get("data", {}).items()}


def _http_services(layout: ClusterLayout) -> dict[str, str]:
    """The application's services: every Service of the release with a port named http
    (name -> Service name), so a service added to the chart is found without a change here."""
    body = json.loads(
        kubectl(
            layout, "get", "svc", "-n", NAMESPACE,
            "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json",
        )
    )  # fmt: skip
    found: dict[str, str] = {}
    for service in body["items"]:
        if any(port.get("name") == "http" for port in service["spec"]["ports"]):
            name = service["metadata"]["labels"]["app.kubernetes.io/name"]
            found[name] = service["metadata"]["name"]
    return found


def start_forwards(layout: ClusterLayout, ledger: Ledger) -> dict[str, Any]:
    """Port-forwards to every service, NATS, each database, Prometheus and Jaeger, kept up by
    the forwarder process; returns the state file's body."""
    forwards: list[Forward] = []

    def forward(name: str, service: str, port: int) -> Forward:
        entry = Forward(name, NAMESPACE, service, port, free_port())
        forwards.append(entry)
        return entry

    services = {
        name: forward(name, svc, 8000) for name, svc in sorted(_http_services(layout).items())
    }
    nats = forward("nats", f"{RELEASE}-nats", 4222)
    prometheus = forward("prometheus", f"{RELEASE}-prometheus", 9090)
    jaeger = forward("jaeger", f"{RELEASE}-jaeger", 16686)
    postgres: dict[str, str] = {}
    mongo: dict[str, str] = {}
    sdbs = json.loads(kubectl(layout, "get", "sdb", "-n", NAMESPACE, "-o", "json"))["items"]
    for sdb in sdbs:
        service, engine = sdb["spec"]["service"], sdb["spec"]["engine"]
        credentials = _secret(layout, sdb["status"]["secretName"])
        port = 5432 if engine == "postgresql" else 27017
        # The operator's headless Service of the database's StatefulSet.
        local = forward(f"db-{service}", sdb["metadata"]["name"], port)
        login = (
            f"{quote(credentials['username'], safe='')}:{quote(credentials['password'], safe='')}"
        )
        if engine == "postgresql":
            postgres[service] = (
                f"postgresql+asyncpg://{login}@127.0.0.1:{local.local_port}/{credentials['database']}"
            )
        else:
            options = (
                "authMechanism=PLAIN&maxPoolSize=1" if engine == "ferretdb" else "authSource=admin"
            )
            mongo[service] = (
                f"mongodb://{login}@127.0.0.1:{local.local_port}/{credentials['database']}?{options}"
            )
    plan = ForwardPlan(find_binary("kubectl"), str(layout.admin_kubeconfig), forwards)
    plan_file = layout.root / "forwards.json"
    plan.write(plan_file)
    forwarder = processes.start(
        ledger,
        "port-forwards",
        [sys.executable, "-m", "polysaga_tools.cluster.forwards", str(plan_file)],
        layout.logs,
    )
    for entry in forwards:
        processes.wait_until(
            functools.partial(_listening, entry.local_port),
            forwarder,
            layout.logs / "port-forwards.log",
            f"the port-forward to {entry.service}",
            120,
        )
    nats_secret = _secret(layout, f"{RELEASE}-nats-users")
    operator_token = _secret(layout, f"{RELEASE}-operator-token")["token"]
    return {
        "started_at": time.time(),
        "data_dir": str(layout.root),
        "services": {name: f.url for name, f in services.items()},
        "instances": {name: [f.url] for name, f in services.items()},
        "processes": {},
        "restarts": {},
        "nats": f"nats://127.0.0.1:{nats.local_port}",
        "postgres": {"databases": postgres},
        "mongo": mongo,
        "ferretdb": {},
        "nats_users": {
            user: {"user": user, "password": password}
            for user, password in nats_secret.items()
            if user != NATS_ADMIN_USER
        },
        "nats_admin": {"user": NATS_ADMIN_USER, "password": nats_secret[NATS_ADMIN_USER]},
        "auth": identity.state(layout, operator_token),
        "prometheus": prometheus.url,
        "jaeger": {"ui": jaeger.url, "api": f"{jaeger.url}/api", "otlp": None},
        "smtp": None,
    }


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
