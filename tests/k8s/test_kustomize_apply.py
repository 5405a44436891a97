"""The kustomize overlays, built by kubectl kustomize and applied to the test kube-apiserver
in a server-side dry run: every object passes the API server's validation and admission."""

from __future__ import annotations

import pytest

from chart_tools import K8S, OPERATOR_CHART, documents, run, tool
from k8s.apiserver import KubeApiServer


@pytest.mark.parametrize("overlay", ["kind", "minikube"])
def test_overlay_applies_in_a_server_side_dry_run(
    kube_apiserver: KubeApiServer, overlay: str
) -> None:
    manifests = run([tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)]).stdout
    # A dry run creates nothing, so the ServiceDatabase kind and the namespace must exist
    # before the objects that use them can be judged.
    for crd in sorted((OPERATOR_CHART / "crds").glob("*.yaml")):
        kube_apiserver.kubectl("apply", "--server-side", "-f", str(crd))
    kube_apiserver.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    namespace = kube_apiserver.kubectl("create", "namespace", "polysaga", check=False)
    assert namespace.returncode == 0 or "AlreadyExists" in namespace.stderr, namespace.stderr
    done = kube_apiserver.kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    applied = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(documents(manifests)), done.stdout
