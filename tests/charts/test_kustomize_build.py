"""k8s/: the committed base equals a fresh rendering of the charts, and both overlays build
with kubectl kustomize into what they promise (local images, node port, storage class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chart_tools import K8S, REPO, SERVICES, by_name, documents, of_kind, run, tool

OVERLAYS = ("kind", "minikube")


def test_the_committed_base_is_the_charts_rendered_now(tmp_path: Path) -> None:
    run(["env", f"HELM={tool('helm')}", "bash", str(K8S / "render-base.sh"), str(tmp_path)])
    for rendered in sorted(tmp_path.iterdir()):
        committed = K8S / "base" / rendered.name
        assert committed.exists(), f"{committed} missing: run bash k8s/render-base.sh"
        assert committed.read_text() == rendered.read_text(), (
            f"{committed} is stale: run bash k8s/render-base.sh"
        )


def _build(overlay: str) -> list[dict[str, Any]]:
    return documents(run([tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)]).stdout)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_local_images_and_the_gateway_on_a_node_port(overlay: str) -> None:
    docs = _build(overlay)
    for doc in docs:
        if doc["kind"] not in {
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
        }:
            assert doc["metadata"].get("namespace") == "polysaga", doc["metadata"]["name"]
    deployments = of_kind(docs, "Deployment")
    assert {f"polysaga-{s}" for s in SERVICES} <= {d["metadata"]["name"] for d in deployments}
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"].endswith(":dev"), container["image"]
            assert container["imagePullPolicy"] == "Never"
    gateway = by_name(docs, "Service", "polysaga-gateway")
    assert gateway["spec"]["type"] == "NodePort"
    assert gateway["spec"]["ports"][0]["nodePort"] == 30080
    (claim,) = by_name(docs, "StatefulSet", "polysaga-nats")["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "standard"
    secrets = {d["metadata"]["name"] for d in of_kind(docs, "Secret")}
    assert "polysaga-nats-users" not in secrets, "no password in a committed file"
    assert of_kind(docs, "CustomResourceDefinition"), "the operator's CRD comes with the base"


def test_minikube_also_routes_the_gateway_through_the_ingress_addon() -> None:
    (ingress,) = of_kind(_build("minikube"), "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "polysaga-gateway"
    assert REPO.joinpath("k8s", "overlays", "minikube", "ingress.yaml").exists()
