"""Both charts installed by the real helm into the test kube-apiserver: the operator chart (with
the ServiceDatabase CRD) first, then the application; an upgrade that turns NATS into a
synced three-server cluster keeps the generated passwords; uninstall removes the release.
No kubelet runs, so nothing here waits for a pod: the API server stores and validates."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from chart_tools import APP_CHART, OPERATOR_CHART, SERVICES, documents, render, run, tool
from k8s.apiserver import KubeApiServer

CRD = "servicedatabases.polysaga.io"


def _helm(server: KubeApiServer, *args: str, check: bool = True) -> Any:
    return run([tool("helm"), "--kubeconfig", str(server.kubeconfig), *args], check=check)


def _get(server: KubeApiServer, namespace: str, kind: str) -> list[dict[str, Any]]:
    out = server.kubectl("get", kind, "--namespace", namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _one(server: KubeApiServer, namespace: str, kind: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        server.kubectl("get", kind, name, "--namespace", namespace, "-o", "json").stdout
    )
    return doc


@pytest.fixture
def namespaces(kube_apiserver: KubeApiServer) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    return f"polysaga-system-{suffix}", f"polysaga-{suffix}"


def _install_operator(server: KubeApiServer, namespace: str) -> str:
    release = f"operator-{namespace[-6:]}"
    _helm(server, "install", release, str(OPERATOR_CHART), "-n", namespace, "--create-namespace")
    server.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    return release


def test_install_upgrade_and_uninstall_both_charts(
    kube_apiserver: KubeApiServer, namespaces: tuple[str, str]
) -> None:
    operator_ns, app_ns = namespaces
    operator_release = _install_operator(kube_apiserver, operator_ns)
    assert _get(kube_apiserver, operator_ns, "deployments"), "the operator's Deployment"

    _helm(kube_apiserver, "install", "polysaga", str(APP_CHART), "-n", app_ns, "--create-namespace")
    deployments = {d["metadata"]["name"] for d in _get(kube_apiserver, app_ns, "deployments")}
    assert deployments == {f"polysaga-{s}" for s in SERVICES}
    databases = {
        d["spec"]["service"]: d["spec"]["engine"]
        for d in _get(kube_apiserver, app_ns, "servicedatabases.polysaga.io")
    }
    assert databases == {
        "order": "postgresql",
        "inventory": "postgresql",
        "payment": "postgresql",
        "orchestrator": "postgresql",
        "sales": "postgresql",
        "user": "postgresql",
        "notification": "postgresql",
        "catalog": "mongodb",
        "order-view": "mongodb",
    }
    nats = _one(kube_apiserver, app_ns, "statefulset", "polysaga-nats")
    assert nats["spec"]["replicas"] == 1
    passwords = _one(kube_apiserver, app_ns, "secret", "polysaga-nats-users")["data"]
    # One NATS user per service that talks over NATS (the gateway composes over HTTP only).
    assert set(passwords) == {
        "order", "inventory", "payment", "orchestrator", "sales", "user", "catalog",
        "order-view", "notification",
    }  # fmt: skip
    assert all(len(base64.b64decode(p)) == 32 for p in passwords.values())

    _helm(
        kube_apiserver,
        *("upgrade", "polysaga", str(APP_CHART), "-n", app_ns),
        *("--set", "nats.cluster.enabled=true", "--set", "nats.syncAlways=true"),
        *("--set", "services.inventory.replicaCount=2"),
    )
    assert _one(kube_apiserver, app_ns, "statefulset", "polysaga-nats")["spec"]["replicas"] == 3
    conf = _one(kube_apiserver, app_ns, "configmap", "polysaga-nats-config")["data"]["nats.conf"]
    assert "sync_interval: always" in conf and "routes: [" in conf
    inventory = _one(kube_apiserver, app_ns, "deployment", "polysaga-inventory")
    assert inventory["spec"]["replicas"] == 2
    after = _one(kube_apiserver, app_ns, "secret", "polysaga-nats-users")["data"]
    assert after == passwords, "the passwords running services use survive an upgrade"
    history = _helm(kube_apiserver, "history", "polysaga", "-n", app_ns, "-o", "json").stdout
    assert [r["status"] for r in json.loads(history)] == ["superseded", "deployed"]

    _helm(kube_apiserver, "uninstall", "polysaga", "-n", app_ns, "--wait")
    for kind in ("deployments", "statefulsets", "services", "secrets", "configmaps"):
        left = [
            d["metadata"]["name"]
            for d in _get(kube_apiserver, app_ns, kind)
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == "polysaga"
        ]
        assert left == [], (kind, left)
    assert _get(kube_apiserver, app_ns, "servicedatabases.polysaga.io") == []
    assert json.loads(_helm(kube_apiserver, "list", "-n", app_ns, "-o", "json").stdout) == []
    _helm(kube_apiserver, "uninstall", operator_release, "-n", operator_ns, "--wait")
    assert _get(kube_apiserver, operator_ns, "deployments") == []


def test_an_install_with_values_violating_the_schema_changes_nothing(
    kube_apiserver: KubeApiServer, namespaces: tuple[str, str]
) -> None:
    _, app_ns = namespaces
    kube_apiserver.kubectl("create", "namespace", app_ns)
    refused = _helm(
        kube_apiserver,
        *("install", "polysaga", str(APP_CHART), "-n", app_ns),
        *("--set", "nats.cluster.replicas=2"),
        check=False,
    )
    assert refused.returncode != 0
    assert "values don't meet the specifications of the schema" in refused.stderr
    assert "replicas" in refused.stderr
    assert json.loads(_helm(kube_apiserver, "list", "-n", app_ns, "-o", "json").stdout) == []
    assert _get(kube_apiserver, app_ns, "deployments") == []


def _as_list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def _as_pod(workload: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The first pod a workload's controller would create (a StatefulSet's claim templates
    become claim volumes; a dry run needs no claim to exist)."""
    spec = dict(workload["spec"]["template"]["spec"])
    name = workload["metadata"]["name"]
    claims = [
        {
            "name": t["metadata"]["name"],
            "persistentVolumeClaim": {"claimName": f"{t['metadata']['name']}-{name}-0"},
        }
        for t in workload["spec"].get("volumeClaimTemplates", [])
    ]
    spec["volumes"] = [*spec.get("volumes", []), *claims]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-0", "namespace": namespace},
        "spec": spec,
    }


def test_every_pod_the_chart_asks_for_meets_the_restricted_pod_security_standard(
    kube_apiserver: KubeApiServer, namespaces: tuple[str, str]
) -> None:
    """The API server's PodSecurity admission judges each workload's pod template as a Pod
    (server-side dry run), in a namespace that enforces the restricted standard."""
    _, app_ns = namespaces
    kube_apiserver.kubectl("create", "namespace", app_ns)
    kube_apiserver.kubectl(
        "label", "namespace", app_ns, "pod-security.kubernetes.io/enforce=restricted"
    )
    values = {"jaeger.enabled": True, "nats.cluster.enabled": True}
    docs = render(APP_CHART, values=values)
    # Pods are admitted only with an existing ServiceAccount; no controller-manager runs here
    # to create "default", so it is created with the chart's own.
    accounts = [d for d in docs if d["kind"] == "ServiceAccount"]
    accounts.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    kube_apiserver.kubectl("apply", "-n", app_ns, "-f", "-", stdin=_as_list(accounts))
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    assert len(workloads) == len(SERVICES) + 2  # the services, NATS and Jaeger
    pods = [_as_pod(w, app_ns) for w in workloads]
    done = kube_apiserver.kubectl("apply", "--dry-run=server", "-f", "-", stdin=_as_list(pods))
    assert done.stdout.count("(server dry run)") == len(pods), done.stdout
    assert "violate" not in done.stderr.lower(), done.stderr
    # The same judge refuses a pod that drops the chart's security context.
    lax = _as_pod(workloads[0], app_ns)
    lax["spec"]["containers"] = [
        {k: v for k, v in c.items() if k != "securityContext"} for c in lax["spec"]["containers"]
    ]
    refused = kube_apiserver.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=_as_list([lax]), check=False
    )
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr


def test_rendered_manifests_are_valid_kubernetes_objects(
    kube_apiserver: KubeApiServer, namespaces: tuple[str, str]
) -> None:
    """Everything optional on (Jaeger, ServiceMonitor aside: its CRD is not installed here),
    validated by the API server's own schemas in a server-side dry run."""
    operator_ns, app_ns = namespaces
    _install_operator(kube_apiserver, operator_ns)
    kube_apiserver.kubectl("create", "namespace", app_ns)
    values = {"jaeger.enabled": True, "nats.cluster.enabled": True, "nats.syncAlways": True}
    text = _helm(
        kube_apiserver,
        *("template", "polysaga", str(APP_CHART), "-n", app_ns),
        *[arg for k, v in values.items() for arg in ("--set", f"{k}={str(v).lower()}")],
    ).stdout
    done = kube_apiserver.kubectl(
        "apply", "--dry-run=server", "--namespace", app_ns, "-f", "-", stdin=text
    )
    assert done.stdout.count("(server dry run)") == len(documents(text))
