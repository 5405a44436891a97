"""Where a local cluster lives: its addresses (fixed, so skaffold's `local` profile can name
the registry), its ports and its directories."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

# The node's address and the pod range share one bridge that has no uplink; the service range
# is virtual (kube-proxy's iptables rules) and routed to the same bridge, so nothing addressed
# to the cluster ever takes the host's default route.
BRIDGE = "polysaga0"
NODE_IP = "10.213.0.1"
POD_CIDR = "10.213.0.0/24"
SERVICE_CIDR = "10.213.1.0/24"
API_SERVICE_IP = "10.213.1.1"
DNS_SERVICE_IP = "10.213.1.10"
CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "polysaga"

API_PORT = 6443
KUBELET_PORT = 10250
REGISTRY_PORT = 5000
REGISTRY = f"{NODE_IP}:{REGISTRY_PORT}"

KUBERNETES_VERSION = "v1.34.4"
COREDNS_VERSION = "1.12.1"
PAUSE_IMAGE = f"{REGISTRY}/pause:3.10"
COREDNS_IMAGE = f"{REGISTRY}/coredns:{COREDNS_VERSION}"

# Pods get addresses from .10 up; .1 is the node (and the pods' gateway to the services).
POD_RANGE_START = "10.213.0.10"
POD_RANGE_END = "10.213.0.250"

# Static volumes for volume claims (no dynamic provisioner runs): enough for every database,
# NATS and Prometheus, with room for claims a test makes.
VOLUMES = 24
VOLUME_SIZE = "2Gi"
STORAGE_CLASS = "local"


@dataclass(frozen=True)
class ClusterLayout:
    """The cluster's directories under ``root``; everything in it is removed by ``down``."""

    root: Path

    @property
    def certs(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ledger(self) -> Path:
        """What ``up`` created so far (processes, rules, mounts): what ``down`` undoes."""
        return self.root / "ledger.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def kubeconfig(self, component: str) -> Path:
        return self.root / "kubeconfigs" / f"{component}.yaml"

    @property
    def etcd(self) -> Path:
        return self.root / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def docker_socket(self) -> Path:
        return self.root / "docker" / "docker.sock"

    @property
    def docker_exec_root(self) -> Path:
        return self.root / "docker" / "exec"

    @property
    def registry_data(self) -> Path:
        """The registry's storage outlives a cluster (a build cache, like Docker's image
        store): a warm ``up`` finds every image already pushed."""
        return cache_dir() / "registry-data"

    @property
    def auth(self) -> Path:
        """The cluster's own identity provider: its signing key (mode 0600) and the chart
        values that make the gateway trust it."""
        return self.root / "auth"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"


def cache_dir() -> Path:
    """The bootstrap's tool cache (POLYSAGA_CACHE, else ~/.cache/polysaga)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "polysaga"
    return Path(os.environ.get("POLYSAGA_CACHE", default))


def pod_gateway_prefix() -> str:
    """The node's address with the pod range's prefix length, as the bridge carries it."""
    return f"{NODE_IP}/{ipaddress.ip_network(POD_CIDR).prefixlen}"
