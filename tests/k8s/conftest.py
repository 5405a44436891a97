"""A real kube-apiserver (with etcd) for every test in this folder, all marked ``k8s``; the
ServiceDatabase CRD and the operator chart's RBAC applied to it; the operator itself running
as a process under that chart's ServiceAccount."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from k8s.apiserver import KubeApiServer, running_apiserver, write_kubeconfig
from k8s.operator_setup import (
    CRD_FILE,
    OPERATOR_NAMESPACE,
    OPERATOR_RELEASE,
    OPERATOR_SERVICE_ACCOUNT,
    RunningOperator,
    render_operator_chart,
)
from k8s.polling import eventually
from polysaga_tools.servers import free_port

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def kube_apiserver() -> Iterator[KubeApiServer]:
    """One control plane for the session; tests isolate themselves by namespace."""
    root = Path(tempfile.mkdtemp(prefix="polysaga-k8s-"))
    try:
        with running_apiserver(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def namespace(kube_apiserver: KubeApiServer) -> str:
    """A fresh namespace per test (never deleted: no namespace controller runs here)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube_apiserver.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def servicedatabase_crd(kube_apiserver: KubeApiServer) -> None:
    """The CRD exactly as the operator chart ships it."""
    kube_apiserver.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    kube_apiserver.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicedatabases.polysaga.io",
    )


@pytest.fixture(scope="session")
def operator_installed(kube_apiserver: KubeApiServer, servicedatabase_crd: None) -> None:
    """Everything the operator chart renders (ServiceAccount, RBAC, Deployment, Service),
    applied to the API server. The Deployment's pod never starts here: no kubelet."""
    kube_apiserver.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    documents = render_operator_chart()
    kube_apiserver.kubectl(
        "apply", "-f", "-", stdin="\n---\n".join(yaml.safe_dump(doc) for doc in documents)
    )


@pytest.fixture(scope="session")
def operator_token(kube_apiserver: KubeApiServer, operator_installed: None) -> str:
    """A token of the chart's ServiceAccount, as the kubelet would mount it."""
    with kube_apiserver.client() as admin:
        response = admin.post(
            f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts/"
            f"{OPERATOR_SERVICE_ACCOUNT}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86400},
            },
        )
    assert response.status_code == 201, response.text
    token: str = response.json()["status"]["token"]
    return token


@pytest.fixture(scope="session")
def running_operator(
    kube_apiserver: KubeApiServer, operator_token: str, request: pytest.FixtureRequest
) -> Iterator[RunningOperator]:
    """``python -m polysaga_operator`` with the chart's ServiceAccount token, resyncing every
    two seconds so repairs are quick to observe."""
    root = Path(tempfile.mkdtemp(prefix="polysaga-operator-"))
    kubeconfig = root / "kubeconfig"
    write_kubeconfig(kubeconfig, kube_apiserver.url, kube_apiserver.ca_file, operator_token)
    metrics_port, health_port = free_port(), free_port()
    pod_labels = {
        "app.kubernetes.io/name": "polysaga-operator",
        "app.kubernetes.io/instance": OPERATOR_RELEASE,
    }
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "POLYSAGA_OPERATOR_RESYNC_SECONDS": "2",
        "POLYSAGA_OPERATOR_METRICS_PORT": str(metrics_port),
        "POLYSAGA_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{health_port}/healthz",
        "POLYSAGA_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        "POLYSAGA_OPERATOR_POD_LABELS": json.dumps(pod_labels),
    }
    log = root / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "polysaga_operator"], env=env, stdout=out, stderr=out
        )
    operator = RunningOperator(f"http://127.0.0.1:{metrics_port}/metrics", log)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the operator exited:\n{operator.log_tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    try:
        eventually(healthy, timeout_s=60, what=lambda: f"operator liveness\n{operator.log_tail()}")
        yield operator
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if request.session.testsfailed:
            # Kept for the failure's diagnosis; pytest -rA or the CI log shows the path.
            print(f"\noperator log kept at {log}")
        else:
            shutil.rmtree(root, ignore_errors=True)
