"""The node itself: Ready, v1.34, pods on the cluster's own bridge with cluster DNS and the
API through its Service, and no way out of the cluster."""

from __future__ import annotations

import json
import uuid

from cluster.conftest import LocalCluster
from polysaga_tools.cluster.layout import (
    API_SERVICE_IP,
    DNS_SERVICE_IP,
    NODE_IP,
    POD_CIDR,
    REGISTRY,
)

# Runs in a pod: what the pod can resolve and reach, and its routing table (read, never tried:
# no packet is sent to any address outside the cluster).
_PROBE = """
import json, socket, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
request = urllib.request.Request(
    "https://kubernetes.default.svc/version",
    headers={"Authorization": "Bearer " + open(sa + "/token").read()},
)
try:
    socket.getaddrinfo("pypi.org", 443)
    outside = True
except socket.gaierror:
    outside = False
def address(hexadecimal):
    return socket.inet_ntoa(bytes.fromhex(hexadecimal)[::-1])
table = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
print(json.dumps({
    "api_service": socket.gethostbyname("kubernetes.default.svc.cluster.local"),
    "dns_service": socket.gethostbyname("kube-dns.kube-system.svc.cluster.local"),
    "version": json.load(urllib.request.urlopen(request, context=ctx))["gitVersion"],
    "resolves_outside": outside,
    "routes": [(address(row[1]), address(row[7])) for row in table],
}))
"""


def test_the_node_is_ready_on_the_bridge_address(local_cluster: LocalCluster) -> None:
    (node,) = local_cluster.json("get", "nodes")["items"]
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == NODE_IP


def test_a_pod_has_cluster_dns_and_the_api_but_no_way_out(local_cluster: LocalCluster) -> None:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl(
        "run", name, "--restart=Never", f"--image={REGISTRY}/polysaga-base:bookworm",
        "--command", "--", "python3", "-c", _PROBE,
    )  # fmt: skip
    try:
        local_cluster.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Succeeded", f"pod/{name}", "--timeout=120s"
        )
        seen = json.loads(local_cluster.kubectl("logs", name).stdout)
        pod = local_cluster.json("get", "pod", name)
    finally:
        local_cluster.kubectl("delete", "pod", name, "--wait=false", check=False)
    assert seen["api_service"] == API_SERVICE_IP
    assert seen["dns_service"] == DNS_SERVICE_IP
    assert seen["version"] == "v1.34.4"
    assert seen["resolves_outside"] is False, "cluster DNS has no upstream"
    destinations = {destination for destination, _mask in seen["routes"]}
    assert "0.0.0.0" not in destinations, f"a default route: {seen['routes']}"
    assert destinations == {POD_CIDR.split("/")[0], "10.213.1.0"}
    assert pod["status"]["podIP"].startswith("10.213.0.")


def test_logs_and_exec_reach_a_pod(local_cluster: LocalCluster) -> None:
    (pod,) = local_cluster.json("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")[
        "items"
    ]
    name = pod["metadata"]["name"]
    logs = local_cluster.kubectl("logs", "-n", "kube-system", name).stdout
    assert "CoreDNS-1.12.1" in logs
    # CoreDNS's image has no shell; exec its own binary.
    version = local_cluster.kubectl("exec", "-n", "kube-system", name, "--", "/coredns", "-version")
    assert "CoreDNS-1.12.1" in version.stdout
