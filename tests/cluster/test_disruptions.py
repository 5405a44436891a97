"""Sagas survive what happens to pods on a real cluster, while `polysaga demo --attach` runs 300
orders: a service pod and a database pod deleted mid-saga, and a `helm upgrade` with a changed
value rolling every service's pod. Every invariant still holds, and the pods were replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cluster.conftest import LocalCluster

POLYSAGA = str(Path(sys.executable).parent / "polysaga")
HELM = str(Path(sys.executable).parent / "helm")
CHART = Path(__file__).resolve().parents[2] / "charts" / "polysaga"
NAMESPACE = "polysaga"
RELEASE = "polysaga"
# Orders placed beyond those already there before a disruption counts as mid-run.
IN_FLIGHT = 30


def _demo(cluster: LocalCluster, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            POLYSAGA, "demo", "--attach", str(cluster.state_file), "--orders", "300",
            "--payment-failure-rate", "0.2", "--scarce-stock", "--json",
        ],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stats(cluster: LocalCluster) -> dict[str, int]:
    response = httpx.get(f"{cluster.state['services']['order']}/stats", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def _wait_mid_run(
    cluster: LocalCluster, before: dict[str, int], demo: subprocess.Popen[bytes], log: Path
) -> None:
    """Until the demo has placed IN_FLIGHT orders and sagas are pending."""
    deadline = time.monotonic() + 600
    while True:
        assert demo.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the demo placed no orders"
        now = _stats(cluster)
        if sum(now.values()) - sum(before.values()) >= IN_FLIGHT and now.get("PENDING", 0) > 0:
            return
        time.sleep(0.5)


def _demo_report(demo: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    demo.wait(1500)
    output = log.read_text()
    assert demo.returncode == 0, output[-4000:]
    report: dict[str, Any] = json.loads(output[output.index("{") :])
    assert report["orders"] == 300
    assert report["unfinished"] == 0
    assert all(report["invariants"].values()), report["invariants"]
    return report


def _pods(cluster: LocalCluster, selector: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = cluster.json("get", "pods", "-n", NAMESPACE, "-l", selector)[
        "items"
    ]
    return pods


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True" and "deletionTimestamp" not in pod["metadata"]


def _wait_replaced(cluster: LocalCluster, selector: str, old_uids: set[str]) -> None:
    deadline = time.monotonic() + 600
    while True:
        pods = _pods(cluster, selector)
        if pods and all(p["metadata"]["uid"] not in old_uids and _ready(p) for p in pods):
            return
        assert time.monotonic() < deadline, f"{selector}: not replaced by a Ready pod"
        time.sleep(1)


def _service_selector(service: str) -> str:
    return f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name={service}"


def _database_pod(cluster: LocalCluster, service: str) -> str:
    for database in cluster.json("get", "servicedatabases", "-n", NAMESPACE)["items"]:
        if database["spec"]["service"] == service:
            return f"{database['metadata']['name']}-0"
    raise AssertionError(f"no ServiceDatabase for {service}")


def test_a_service_pod_and_a_database_pod_deleted_mid_saga_lose_nothing(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    payment = _service_selector("payment")
    database = _database_pod(local_cluster, "inventory")
    (payment_pod,) = _pods(local_cluster, payment)
    database_uid = local_cluster.json("get", "pod", "-n", NAMESPACE, database)["metadata"]["uid"]
    log = tmp_path / "demo.log"
    before = _stats(local_cluster)
    demo = _demo(local_cluster, log)
    try:
        _wait_mid_run(local_cluster, before, demo, log)
        local_cluster.kubectl(
            "delete", "pod", "-n", NAMESPACE, "--wait=false",
            payment_pod["metadata"]["name"], database,
        )  # fmt: skip
        report = _demo_report(demo, log)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert report["confirmed"] > 0 and report["cancelled"] > 0
    _wait_replaced(local_cluster, payment, {payment_pod["metadata"]["uid"]})
    replaced = local_cluster.json("get", "pod", "-n", NAMESPACE, database)
    assert replaced["metadata"]["uid"] != database_uid and _ready(replaced)


def _deployments(cluster: LocalCluster) -> list[str]:
    """The release's service Deployments (every one with an http port)."""
    found = []
    for deployment in cluster.json(
        "get", "deployments", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"]:
        (container, *_) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"] for e in container.get("env", [])}
        if "POLYSAGA_SERVICE_NAME" in env:
            found.append(deployment["metadata"]["name"])
    return sorted(found)


def test_helm_upgrade_with_a_changed_value_rolls_every_service_and_loses_no_saga(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    deployments = _deployments(local_cluster)
    assert len(deployments) >= 8, deployments
    old = {
        p["metadata"]["uid"]
        for p in local_cluster.json("get", "pods", "-n", NAMESPACE)["items"]
        if p["metadata"]["name"].rsplit("-", 2)[0] in deployments
    }
    log = tmp_path / "demo.log"
    before = _stats(local_cluster)
    demo = _demo(local_cluster, log)
    try:
        _wait_mid_run(local_cluster, before, demo, log)
        upgrade = subprocess.run(
            [
                HELM, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
                "--set", "env.RELAY_POLL_INTERVAL_S=0.5",
                f"--kubeconfig={local_cluster.kubeconfig}",
            ],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        for deployment in deployments:
            local_cluster.kubectl(
                "rollout", "status", "-n", NAMESPACE, f"deployment/{deployment}",
                "--timeout=900s", timeout=960,
            )  # fmt: skip
        _demo_report(demo, log)
    finally:
        if demo.poll() is None:
            demo.kill()
    for deployment in deployments:
        selector = _service_selector(deployment.removeprefix(f"{RELEASE}-"))
        _wait_replaced(local_cluster, selector, old)
        for pod in _pods(local_cluster, selector):
            (container, *_) = pod["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("POLYSAGA_RELAY_POLL_INTERVAL_S") == "0.5", (deployment, env)
