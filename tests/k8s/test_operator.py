"""The real operator (as a process, with the chart's ServiceAccount) against the real API
server: children, owner references, labels, honest status, updates, repairs, deletion.
No kubelet or controller-manager runs here, so no database pod ever becomes ready."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8s.apiserver import KubeApiServer
from k8s.operator_setup import RunningOperator
from k8s.polling import eventually
from k8s.resources import CHILD_KINDS, apply, get, service_database, url

pytestmark = pytest.mark.usefixtures("running_operator")


def children(api: KubeApiServer, namespace: str, name: str) -> dict[str, dict[str, Any] | None]:
    names = {"Secret": f"{name}-credentials"}
    return {kind: get(api, kind, namespace, names.get(kind, name)) for kind in CHILD_KINDS}


def all_children(api: KubeApiServer, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    def probe() -> dict[str, dict[str, Any]] | None:
        found = children(api, namespace, name)
        return {k: v for k, v in found.items() if v is not None} if all(found.values()) else None

    return eventually(probe, what=f"all children of {namespace}/{name}")


def status_of(api: KubeApiServer, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body = get(api, "ServiceDatabase", namespace, name)
        status = (body or {}).get("status") or {}
        return (
            {**status, "generation": body["metadata"]["generation"]}
            if status.get("phase")
            else None
        )

    return eventually(probe, what=f"status of {namespace}/{name}")


def test_creates_owned_labelled_children(kube_apiserver: KubeApiServer, namespace: str) -> None:
    apply(kube_apiserver, namespace, service_database("order-db", "order"))
    owner = get(kube_apiserver, "ServiceDatabase", namespace, "order-db")
    assert owner is not None
    found = all_children(kube_apiserver, namespace, "order-db")
    for kind, child in found.items():
        (reference,) = child["metadata"]["ownerReferences"]
        assert reference["kind"] == "ServiceDatabase", kind
        assert reference["uid"] == owner["metadata"]["uid"], kind
        assert reference["controller"] is True, kind
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "polysaga-operator", kind
        assert labels["app.kubernetes.io/instance"] == "order-db", kind
        assert labels["app.kubernetes.io/part-of"] == "polysaga", kind
    url_value = base64.b64decode(found["Secret"]["data"]["POLYSAGA_DATABASE_URL"]).decode()
    assert url_value.startswith("postgresql+asyncpg://order:")
    assert url_value.endswith(f"@order-db.{namespace}.svc:5432/order")
    pod = found["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "docker.io/library/postgres:16"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert found["Service"]["spec"]["clusterIP"] == "None"
    ingress = found["NetworkPolicy"]["spec"]["ingress"][0]
    assert ingress["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "order"}


def test_mongodb_gets_a_mongo_statefulset_and_url(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(
        kube_apiserver,
        namespace,
        service_database("view-db", "order-view", engine="mongodb", version="7.0"),
    )
    found = all_children(kube_apiserver, namespace, "view-db")
    container = found["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/library/mongo:7.0"
    mongo_url = base64.b64decode(found["Secret"]["data"]["POLYSAGA_MONGO_URL"]).decode()
    assert mongo_url.startswith("mongodb://order_view:")


def test_phase_stays_pending_while_no_database_pod_is_ready(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("pay-db", "payment"))
    status = status_of(kube_apiserver, namespace, "pay-db")
    assert status["phase"] == "Pending"
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "False"
    assert ready["reason"] in ("RolloutPending", "DatabaseNotReady")
    assert ready["message"]
    assert status["observedGeneration"] == status["generation"]
    assert status["secretName"] == "pay-db-credentials"
    assert status["endpoint"] == f"pay-db.{namespace}.svc:5432"
    table = kube_apiserver.kubectl("get", "sdb", "-n", namespace, "pay-db").stdout
    assert table.split("\n")[0].split() == ["NAME", "SERVICE", "ENGINE", "MODE", "PHASE", "AGE"]
    assert table.split("\n")[1].split()[:5] == [
        "pay-db",
        "payment",
        "postgresql",
        "dedicated",
        "Pending",
    ]


def test_ready_only_once_the_statefulset_reports_ready_replicas(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    """The test plays the StatefulSet controller's part, reporting a ready replica."""
    apply(kube_apiserver, namespace, service_database("stock-db", "inventory"))
    sts = all_children(kube_apiserver, namespace, "stock-db")["StatefulSet"]
    assert status_of(kube_apiserver, namespace, "stock-db")["phase"] == "Pending"
    generation = sts["metadata"]["generation"]
    with kube_apiserver.client() as admin:
        reported = admin.patch(
            url("StatefulSet", namespace, "stock-db") + "/status",
            headers={"Content-Type": "application/merge-patch+json"},
            json={
                "status": {
                    "observedGeneration": generation,
                    "replicas": 1,
                    "readyReplicas": 1,
                    "updatedReplicas": 1,
                    "availableReplicas": 1,
                }
            },
        )
    assert reported.status_code == 200, reported.text

    def ready() -> bool:
        body = get(kube_apiserver, "ServiceDatabase", namespace, "stock-db") or {}
        return (body.get("status") or {}).get("phase") == "Ready"

    eventually(ready, what="phase Ready after the replica reported ready")


def test_an_update_rolls_the_statefulset_spec(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("user-db", "user"))
    all_children(kube_apiserver, namespace, "user-db")
    apply(kube_apiserver, namespace, service_database("user-db", "user", version="17"))

    def image() -> bool:
        sts = get(kube_apiserver, "StatefulSet", namespace, "user-db") or {}
        containers = sts.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        return bool(containers) and containers[0]["image"] == "docker.io/library/postgres:17"

    eventually(image, what="the StatefulSet running postgres:17")
    status = status_of(kube_apiserver, namespace, "user-db")
    eventually(
        lambda: status_of(kube_apiserver, namespace, "user-db")["observedGeneration"] == 2,
        what=f"observedGeneration 2, status {status}",
    )


def test_a_storage_change_replaces_the_statefulset_with_the_new_claim_size(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("cat-db", "catalog"))
    first = all_children(kube_apiserver, namespace, "cat-db")["StatefulSet"]
    apply(kube_apiserver, namespace, service_database("cat-db", "catalog", storage={"size": "2Gi"}))

    def replaced() -> dict[str, Any] | None:
        sts = get(kube_apiserver, "StatefulSet", namespace, "cat-db")
        if sts is None:
            return None
        if sts["metadata"]["uid"] == first["metadata"]["uid"]:
            # The operator deletes it with propagation Orphan; no garbage collector runs here,
            # so the test does its part: with no pods to orphan, drop the orphan finalizer.
            if sts["metadata"].get("deletionTimestamp"):
                kube_apiserver.kubectl(
                    "patch",
                    "statefulset",
                    "cat-db",
                    "-n",
                    namespace,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                )
            return None
        return sts

    sts = eventually(replaced, what="a new StatefulSet after the storage change")
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert claim == "2Gi"


@pytest.mark.parametrize("kind", CHILD_KINDS)
def test_a_child_deleted_by_hand_comes_back(
    kube_apiserver: KubeApiServer, namespace: str, kind: str
) -> None:
    apply(kube_apiserver, namespace, service_database("gw-db", "gateway"))
    before = all_children(kube_apiserver, namespace, "gw-db")[kind]
    name = before["metadata"]["name"]
    kube_apiserver.kubectl("delete", kind.lower(), name, "-n", namespace)

    def recreated() -> bool:
        again = get(kube_apiserver, kind, namespace, name)
        return again is not None and again["metadata"]["uid"] != before["metadata"]["uid"]

    eventually(recreated, what=f"{kind} {name} recreated")


def gone(api: KubeApiServer, kind: str, namespace: str, name: str) -> bool:
    return get(api, kind, namespace, name) is None


def test_deletion_with_retain_keeps_the_secret_released_and_removes_the_rest(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("keep-db", "order", deletionPolicy="Retain"))
    found = all_children(kube_apiserver, namespace, "keep-db")
    assert (
        found["StatefulSet"]["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"]
        == "Retain"
    )
    kube_apiserver.kubectl("delete", "sdb", "keep-db", "-n", namespace, "--wait=false")
    eventually(
        lambda: gone(kube_apiserver, "ServiceDatabase", namespace, "keep-db"),
        what="the ServiceDatabase gone after its finalizer ran",
    )
    for kind in ("StatefulSet", "Service", "NetworkPolicy"):
        assert gone(kube_apiserver, kind, namespace, "keep-db"), kind
    secret = get(kube_apiserver, "Secret", namespace, "keep-db-credentials")
    assert secret is not None
    assert not secret["metadata"].get("ownerReferences")
    assert secret["data"]["password"] == found["Secret"]["data"]["password"]

    # Re-created under the same name, it adopts the retained Secret and its password.
    apply(kube_apiserver, namespace, service_database("keep-db", "order"))
    again = all_children(kube_apiserver, namespace, "keep-db")

    def adopted() -> bool:
        refs = (
            (get(kube_apiserver, "Secret", namespace, "keep-db-credentials") or {})
            .get("metadata", {})
            .get("ownerReferences")
        )
        return bool(refs)

    eventually(adopted, what="the retained Secret adopted again")
    assert again["Secret"]["data"]["password"] == found["Secret"]["data"]["password"]


def test_deletion_with_delete_removes_everything(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("drop-db", "order", deletionPolicy="Delete"))
    found = all_children(kube_apiserver, namespace, "drop-db")
    assert (
        found["StatefulSet"]["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"]
        == "Delete"
    )
    kube_apiserver.kubectl("delete", "sdb", "drop-db", "-n", namespace, "--wait=false")
    eventually(
        lambda: gone(kube_apiserver, "ServiceDatabase", namespace, "drop-db"),
        what="the ServiceDatabase gone after its finalizer ran",
    )
    left = {
        kind: child
        for kind, child in children(kube_apiserver, namespace, "drop-db").items()
        if child is not None
    }
    assert left == {}


def sample(operator: RunningOperator, name: str, **labels: str) -> float:
    text = httpx.get(operator.metrics_url, timeout=5).text
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name and labels.items() <= found.labels.items()
    )


def test_reconciles_are_counted_in_prometheus_metrics(
    kube_apiserver: KubeApiServer, namespace: str, running_operator: RunningOperator
) -> None:
    apply(kube_apiserver, namespace, service_database("metric-db", "order"))
    all_children(kube_apiserver, namespace, "metric-db")

    def counted() -> bool:
        return (
            sample(
                running_operator,
                "polysaga_operator_reconciles_total",
                trigger="create",
                result="success",
            )
            >= 1
        )

    eventually(counted, what="a successful create reconcile in the metrics")
    assert (
        sample(
            running_operator, "polysaga_operator_reconcile_duration_seconds_count", trigger="create"
        )
        >= 1
    )
