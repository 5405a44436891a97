"""The command lines and configuration files of the cluster's processes, as pure functions of
the layout and the binaries' paths, so they can be read and tested without starting anything.

The settings this VM needs are here, each with its reason: containerd restricts
oom_score_adj (root lacks CAP_SYS_RESOURCE), the kubelet runs on cgroup v1 with the cgroupfs
driver and no OOM score of its own, the CNI bridge masquerades nothing and installs no default
route, and Docker neither bridges, forwards nor rewrites iptables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polysaga_tools.cluster.host import CLUSTER_CGROUP
from polysaga_tools.cluster.layout import (
    API_PORT,
    BRIDGE,
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    KUBELET_PORT,
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    POD_RANGE_END,
    POD_RANGE_START,
    REGISTRY,
    REGISTRY_PORT,
    SERVICE_CIDR,
    ClusterLayout,
)
from polysaga_tools.cluster.pki import Credentials

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class Binaries:
    etcd: str
    apiserver: str
    controller_manager: str
    scheduler: str
    kubelet: str
    kube_proxy: str
    containerd: str
    dockerd: str
    registry: str


@dataclass(frozen=True)
class EtcdPorts:
    client: int
    peer: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client}"


def etcd_argv(binaries: Binaries, layout: ClusterLayout, ports: EtcdPorts) -> list[str]:
    peer = f"http://127.0.0.1:{ports.peer}"
    return [
        binaries.etcd,
        f"--name={NODE_NAME}",
        f"--data-dir={layout.etcd}",
        f"--listen-client-urls={ports.url}",
        f"--advertise-client-urls={ports.url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={NODE_NAME}={peer}",
        # A dev cluster: a smaller WAL sync cost, and no snapshot storms on a shared disk.
        "--unsafe-no-fsync",
        "--snapshot-count=10000",
    ]


def apiserver_argv(binaries: Binaries, credentials: Credentials, etcd: EtcdPorts) -> list[str]:
    return [
        binaries.apiserver,
        f"--etcd-servers={etcd.url}",
        f"--advertise-address={NODE_IP}",
        f"--bind-address={NODE_IP}",
        f"--secure-port={API_PORT}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--tls-cert-file={credentials.apiserver_cert}",
        f"--tls-private-key-file={credentials.apiserver_key}",
        f"--client-ca-file={credentials.ca}",
        f"--token-auth-file={credentials.token_file}",
        f"--kubelet-client-certificate={credentials.kubelet_client_cert}",
        f"--kubelet-client-key={credentials.kubelet_client_key}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={credentials.service_account_pub}",
        f"--service-account-signing-key-file={credentials.service_account_key}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--profiling=false",
        "--anonymous-auth=false",
    ]


def controller_manager_argv(
    binaries: Binaries, layout: ClusterLayout, credentials: Credentials
) -> list[str]:
    kubeconfig = layout.kubeconfig("controller-manager")
    return [
        binaries.controller_manager,
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={NODE_IP}",
        "--secure-port=10257",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cluster-cidr={POD_CIDR}",
        "--allocate-node-cidrs=false",
        f"--service-account-private-key-file={credentials.service_account_key}",
        f"--root-ca-file={credentials.ca}",
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--profiling=false",
        # Pods on a node that stops answering are evicted after a minute, not five.
        "--node-monitor-grace-period=40s",
    ]


def scheduler_argv(binaries: Binaries, layout: ClusterLayout) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [
        binaries.scheduler,
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={NODE_IP}",
        "--secure-port=10259",
        "--leader-elect=false",
        "--profiling=false",
    ]


def containerd_config(layout: ClusterLayout) -> str:
    """containerd with its CRI plugin: runc through the v2 shim, cgroupfs, CNI from Debian's
    plugins, and the local registry over plain HTTP."""
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"
oom_score = 0

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[debug]
  address = "{layout.containerd_socket}.debug"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: containerd may only raise a container's OOM score.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, so `down` finds every one of them.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  max_container_log_line_size = 16384

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{layout.containerd_state}/runc"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{layout.cni_conf_dir}"
  max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{REGISTRY}"]
  endpoint = ["http://{REGISTRY}"]

[plugins."io.containerd.grpc.v1.cri".registry.configs."{REGISTRY}".tls]
  insecure_skip_verify = true
"""


def cni_conflist(layout: ClusterLayout) -> dict[str, Any]:
    """One bridge for every pod: no masquerade and no default route (pods reach only the pod
    and service ranges); the firewall plugin admits pod traffic past a FORWARD policy of DROP."""
    return {
        "cniVersion": "1.0.0",
        "name": "polysaga",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.cni_data_dir),
                    "ranges": [
                        [
                            {
                                "subnet": POD_CIDR,
                                "rangeStart": POD_RANGE_START,
                                "rangeEnd": POD_RANGE_END,
                                "gateway": NODE_IP,
                            }
                        ]
                    ],
                    "routes": [{"dst": SERVICE_CIDR, "gw": NODE_IP}],
                },
            },
            {"type": "firewall", "backend": "iptables"},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": False},
        ],
    }


def kubelet_config(layout: ClusterLayout, credentials: Credentials) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "healthzBindAddress": NODE_IP,
        "healthzPort": 10248,
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(credentials.ca)},
        },
        # Only holders of a certificate from the cluster's CA (the API server) get this far.
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageServiceEndpoint": f"unix://{layout.containerd_socket}",
        # This VM: cgroup v1, no systemd, and no CAP_SYS_RESOURCE for a negative OOM score.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        # Pods live under the cluster's own cgroup tree, where `down` finds every process.
        "cgroupRoot": f"/{CLUSTER_CGROUP}",
        "oomScoreAdj": 0,
        "failSwapOn": False,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [DNS_SERVICE_IP],
        # No upstream resolvers: a pod asking for a name outside the cluster gets no answer.
        "resolvConf": str(layout.root / "resolv.conf"),
        "podLogsDir": str(layout.pod_logs),
        "staticPodPath": "",
        "serializeImagePulls": False,
        "maxPods": 110,
        # The shared disk is large; a dev node should not evict for a few percent of it.
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "protectKernelDefaults": False,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def kubelet_argv(binaries: Binaries, layout: ClusterLayout) -> list[str]:
    return [
        binaries.kubelet,
        f"--config={layout.root / 'kubelet-config.yaml'}",
        f"--kubeconfig={layout.kubeconfig('kubelet')}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.kubelet_root / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--register-node=true",
        # The CNI bridge plugin owns the bridge; the kubelet only needs hairpin on its ports.
        "--v=1",
    ]


def kube_proxy_config(layout: ClusterLayout) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"{NODE_IP}:10256",
        "metricsBindAddress": f"{NODE_IP}:10249",
        "clusterCIDR": POD_CIDR,
        # Only the node's own address serves NodePorts.
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # This VM refuses the conntrack sysctls; leave the kernel's values alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def kube_proxy_argv(binaries: Binaries, layout: ClusterLayout) -> list[str]:
    return [binaries.kube_proxy, f"--config={layout.root / 'kube-proxy-config.yaml'}"]


def dockerd_argv(binaries: Binaries, layout: ClusterLayout, data_root: Path) -> list[str]:
    """Docker for image builds only: on the cluster's containerd, with no bridge, no
    forwarding and no iptables rules (a build container has no network at all), pushing to
    the local registry over plain HTTP."""
    return [
        binaries.dockerd,
        f"--host={layout.docker_host}",
        f"--containerd={layout.containerd_socket}",
        f"--data-root={data_root}",
        f"--exec-root={layout.docker_exec_root}",
        f"--pidfile={layout.root / 'docker' / 'docker.pid'}",
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--oom-score-adjust=0",
        "--storage-driver=overlay2",
        f"--cgroup-parent=/{CLUSTER_CGROUP}/docker",
        f"--insecure-registry={REGISTRY}",
        "--log-level=warn",
    ]


def registry_config(layout: ClusterLayout) -> str:
    """Debian's docker-registry (distribution v2), on the node's address only."""
    return json.dumps(
        {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(layout.registry_data)},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"{NODE_IP}:{REGISTRY_PORT}"},
        },
        indent=2,
    )


def registry_argv(binaries: Binaries, layout: ClusterLayout) -> list[str]:
    return [binaries.registry, "serve", str(layout.root / "registry.yaml")]


def write_configs(layout: ClusterLayout, credentials: Credentials) -> None:
    """Every configuration file the processes read, into the layout's directories."""
    for directory in (
        layout.cni_conf_dir,
        layout.cni_data_dir,
        layout.containerd_root,
        layout.containerd_state,
        layout.kubelet_root,
        layout.pod_logs,
        layout.registry_data,
        layout.docker_exec_root,
        layout.logs,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    layout.containerd_config.write_text(containerd_config(layout))
    (layout.cni_conf_dir / "10-polysaga.conflist").write_text(
        json.dumps(cni_conflist(layout), indent=2)
    )
    # JSON is YAML: the kubelet, kube-proxy and the registry read these as their YAML configs.
    (layout.root / "kubelet-config.yaml").write_text(
        json.dumps(kubelet_config(layout, credentials), indent=2)
    )
    (layout.root / "kube-proxy-config.yaml").write_text(
        json.dumps(kube_proxy_config(layout), indent=2)
    )
    (layout.root / "registry.yaml").write_text(registry_config(layout))
    (layout.root / "resolv.conf").write_text(f"# no upstream resolvers\nsearch {CLUSTER_DOMAIN}\n")
