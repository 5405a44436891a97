"""The whole system as pods on the local cluster, as `polysaga cluster up` deploys it through
skaffold's local profile: every pod Ready, every database a Ready StatefulSet pod of the
operator's that its service mounts and migrates, 300 orders holding every invariant through
`polysaga demo --attach`, one saga as one trace in the in-cluster Jaeger, and the dashboards'
data in the in-cluster Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cluster.conftest import LocalCluster
from polysaga_tools.cluster.layout import REGISTRY

POLYSAGA = str(Path(sys.executable).parent / "polysaga")
NAMESPACE = "polysaga"
LAG_P99 = "histogram_quantile(0.99, sum by (le, read_model) (rate({}[5m])))".format(
    "polysaga_consistency_lag_seconds_bucket"
)


def test_every_pod_is_ready_and_runs_an_image_built_here(local_cluster: LocalCluster) -> None:
    for namespace in (NAMESPACE, "polysaga-system", "kube-system"):
        pods = local_cluster.json("get", "pods", "-n", namespace)["items"]
        assert pods, namespace
        for pod in pods:
            name = f"{namespace}/{pod['metadata']['name']}"
            conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert conditions.get("Ready") == "True", name
            for container in pod["spec"]["containers"]:
                assert container["image"].startswith(f"{REGISTRY}/"), (name, container["image"])


def test_every_database_is_a_ready_statefulset_its_service_mounts_and_uses(
    local_cluster: LocalCluster,
) -> None:
    databases = local_cluster.json("get", "servicedatabases", "-n", NAMESPACE)["items"]
    engines = {d["spec"]["service"]: d["spec"]["engine"] for d in databases}
    # The MongoDB-backed services get FerretDB here (the local profile's databases.mongoEngine).
    for service in ("order", "inventory", "payment", "user", "notification"):
        assert engines[service] == "postgresql", engines
    for service in ("catalog", "order-view"):
        assert engines[service] == "ferretdb", engines
    for database in databases:
        name, status = database["metadata"]["name"], database["status"]
        assert status["phase"] == "Ready", (name, status)
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert ready["status"] == "True" and ready["reason"] == "DatabaseReady", ready
        sts = local_cluster.json("get", "statefulset", "-n", NAMESPACE, name)
        assert sts["status"]["readyReplicas"] == 1, name
        service = database["spec"]["service"]
        deployment = local_cluster.json("get", "deployment", "-n", NAMESPACE, f"polysaga-{service}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
        assert status["secretName"] in secrets, (service, secrets)
    # Ready means migrated and connected: /readyz checks the service's database and NATS.
    for service, url in local_cluster.state["services"].items():
        response = httpx.get(f"{url}/readyz", timeout=10)
        assert response.status_code == 200, (service, response.text)


def test_demo_attached_to_the_pods_holds_every_invariant(local_cluster: LocalCluster) -> None:
    done = subprocess.run(
        [
            POLYSAGA, "demo", "--attach", str(local_cluster.state_file), "--orders", "300",
            "--payment-failure-rate", "0.2", "--scarce-stock", "--json",
        ],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout)
    assert report["orders"] == 300
    assert report["unfinished"] == 0
    assert report["confirmed"] > 0 and report["cancelled"] > 0
    assert all(report["invariants"].values()), report["invariants"]


def _traces(api: str, order_id: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{api}/traces",
        params={"service": "order", "tags": json.dumps({"app.order.id": order_id}),
                "lookback": "2h", "limit": "20"},
        timeout=10,
    )  # fmt: skip
    response.raise_for_status()
    return list(response.json()["data"] or [])


def test_one_saga_is_one_trace_in_the_jaeger_in_the_cluster(local_cluster: LocalCluster) -> None:
    services = local_cluster.state["services"]
    page = httpx.get(f"{services['order']}/orders", params={"status": "CONFIRMED", "limit": 1})
    page.raise_for_status()
    orders = page.json()["orders"]
    assert orders, "the demo confirmed orders"
    order_id = orders[0]["order_id"]
    api = local_cluster.state["jaeger"]["api"]
    wanted = {"order", "inventory", "payment", "notification", "order-view"}
    deadline = time.monotonic() + 120
    while True:
        traces = _traces(api, order_id)
        seen = {
            str(t["processes"][s["processID"]]["serviceName"])  # type: ignore[index]
            for t in traces
            for s in t["spans"]  # type: ignore[attr-defined]
        }
        if wanted <= seen:
            break
        assert time.monotonic() < deadline, f"services missing from the trace: {wanted - seen}"
        time.sleep(2)
    assert len(traces) == 1, "one saga, one trace"


def test_the_dashboards_data_is_in_the_prometheus_in_the_cluster(
    local_cluster: LocalCluster,
) -> None:
    prometheus = local_cluster.state["prometheus"]
    queries = {
        "sagas ended": "sum by (outcome) (polysaga_sagas_total)",
        "consistency lag": LAG_P99,
        "HTTP requests per service": "sum by (job) (polysaga_http_requests_total)",
        "outbox backlog": "max by (job) (polysaga_outbox_backlog)",
    }
    deadline = time.monotonic() + 90
    for what, query in queries.items():
        while True:
            body = httpx.get(
                f"{prometheus}/api/v1/query", params={"query": query}, timeout=10
            ).json()
            if body["status"] == "success" and body["data"]["result"]:
                break
            assert time.monotonic() < deadline, f"no data for {what}: {query}"
            time.sleep(2)
    jobs = httpx.get(
        f"{prometheus}/api/v1/query", params={"query": "count by (job) (up == 1)"}, timeout=10
    ).json()["data"]["result"]
    assert {r["metric"]["job"] for r in jobs} >= set(local_cluster.state["services"])
