"""Bringing the single node up in order (network, containerd, Docker, registry, images, etcd,
API server, controllers, kubelet, kube-proxy, DNS, storage) and taking it down again: every
step is written to the ledger before it is taken, so ``down`` undoes exactly what was done,
also after a Ctrl-C half-way."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from polysaga_tools.cluster import addons, components, host, images, processes
from polysaga_tools.cluster.layout import (
    API_PORT,
    NODE_IP,
    NODE_NAME,
    REGISTRY,
    VOLUMES,
    ClusterLayout,
    cache_dir,
)
from polysaga_tools.cluster.ledger import Ledger
from polysaga_tools.cluster.pki import Credentials, write_credentials
from polysaga_tools.servers import ServerError, find_binary, free_port

# The daemons that outlive the containers they run: stopped after everything else.
_RUNTIME_DAEMONS = ("registry", "dockerd", "containerd")


def docker_data_root() -> Path:
    """Docker's images outlive a cluster, like the Go build cache: a warm `up` reuses them."""
    return cache_dir() / "docker-data"


def binaries() -> components.Binaries:
    return components.Binaries(
        etcd=find_binary("etcd"),
        apiserver=find_binary("kube-apiserver"),
        controller_manager=find_binary("kube-controller-manager"),
        scheduler=find_binary("kube-scheduler"),
        kubelet=find_binary("kubelet"),
        kube_proxy=find_binary("kube-proxy"),
        containerd=find_binary("containerd"),
        dockerd=find_binary("dockerd"),
        registry=find_binary("docker-registry"),
    )


def kubectl(layout: ClusterLayout, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [find_binary("kubectl"), f"--kubeconfig={layout.admin_kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise ServerError(f"kubectl {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def apply(layout: ClusterLayout, objects: list[dict[str, Any]], attempts: int = 5) -> None:
    """Server-side apply (the API server validates); tried again while a young, busy API
    server times out."""
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    for attempt in range(attempts):
        try:
            kubectl(
                layout, "apply", "--server-side", "--force-conflicts", "--validate=false",
                "-f", "-", stdin=body,
            )  # fmt: skip
            return
        except ServerError:
            if attempt == attempts - 1:
                raise
            time.sleep(2 + attempt * 3)


class NodeStarter:
    """One ``up``: each method starts one piece and waits until it serves."""

    def __init__(self, layout: ClusterLayout, log: Any = None) -> None:
        self.layout = layout
        self.ledger = Ledger(layout.ledger)
        self.bin = binaries()
        self.say = log or (lambda message: None)
        self.credentials: Credentials | None = None

    def up(self) -> None:
        host.preflight()
        layout = self.layout
        if layout.ledger.exists():
            raise host.ClusterExists(
                f"{layout.root} holds a cluster; run polysaga cluster down first"
            )
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.root.chmod(0o755)
        self.ledger.save()
        self.ledger.docker_data_root = str(docker_data_root())
        host.record_host_paths(self.ledger)
        host.create_cgroup_tree(self.ledger)
        self.say("network: bridge, routes, forwarding rules")
        host.create_network(self.ledger)
        self.credentials = write_credentials(layout)
        components.write_configs(layout, self.credentials)
        self._volumes()
        self._runtime()
        self._images()
        self._control_plane()
        self._node()
        self._addons()

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        return processes.start(self.ledger, name, argv, self.layout.logs)

    def _log(self, name: str) -> Path:
        return self.layout.logs / f"{name}.log"

    def _volumes(self) -> None:
        for index in range(VOLUMES):
            path = self.layout.volumes / f"{index:02d}"
            path.mkdir(parents=True, exist_ok=True)
            # The pods run as their own non-root users; a local volume is a plain directory.
            path.chmod(0o1777)

    def _runtime(self) -> None:
        layout = self.layout
        self.say("containerd, Docker and the registry")
        containerd = self._start(
            "containerd", [self.bin.containerd, f"--config={layout.containerd_config}"]
        )
        processes.wait_until(
            layout.containerd_socket.exists, containerd, self._log("containerd"), "containerd", 60
        )
        docker_data_root().mkdir(parents=True, exist_ok=True)
        dockerd = self._start(
            "dockerd", components.dockerd_argv(self.bin, layout, docker_data_root())
        )
        processes.wait_until(
            lambda: _docker_answers(layout), dockerd, self._log("dockerd"), "dockerd", 120
        )
        registry = self._start("registry", components.registry_argv(self.bin, layout))
        processes.wait_until(
            _registry_answers, registry, self._log("registry"), "the image registry", 60
        )

    def _images(self) -> None:
        share = images.cluster_share()
        self.say("images: Debian base, pause, CoreDNS")
        images.import_base(self.layout, images.BASE_IMAGE, share / "rootfs-python.tar")
        images.push_base(self.layout, images.BASE_IMAGE)
        for image in images.node_images():
            images.build_and_push(self.layout, image)

    def _control_plane(self) -> None:
        layout, credentials = self.layout, self.credentials
        assert credentials is not None
        self.say("etcd and the API server")
        etcd_ports = components.EtcdPorts(free_port(), free_port())
        etcd = self._start("etcd", components.etcd_argv(self.bin, layout, etcd_ports))
        processes.wait_until(
            lambda: _etcd_healthy(etcd_ports.url), etcd, self._log("etcd"), "etcd", 60
        )
        apiserver = self._start(
            "kube-apiserver", components.apiserver_argv(self.bin, credentials, etcd_ports)
        )
        processes.wait_until(
            lambda: _apiserver_ready(credentials),
            apiserver,
            self._log("kube-apiserver"),
            "kube-apiserver",
            180,
        )
        self._start(
            "kube-controller-manager",
            components.controller_manager_argv(self.bin, layout, credentials),
        )
        self._start("kube-scheduler", components.scheduler_argv(self.bin, layout))

    def _node(self) -> None:
        layout = self.layout
        self.say("kubelet and kube-proxy")
        kubelet = self._start("kubelet", components.kubelet_argv(self.bin, layout))
        self._start("kube-proxy", components.kube_proxy_argv(self.bin, layout))
        processes.wait_until(
            lambda: _node_ready(layout), kubelet, self._log("kubelet"), f"node {NODE_NAME}", 180, 1
        )

    def _addons(self) -> None:
        layout = self.layout
        self.say("CoreDNS and local volumes")
        apply(layout, addons.storage(layout) + addons.coredns())
        kubectl(
            layout,
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            "--timeout=240s",
        )


def _docker_answers(layout: ClusterLayout) -> bool:
    try:
        images.docker(layout, "version", "--format", "{{.Server.Version}}")
    except ServerError:
        return False
    return True


def _registry_answers() -> bool:
    try:
        return httpx.get(f"http://{REGISTRY}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _etcd_healthy(url: str) -> bool:
    try:
        return bool(httpx.get(f"{url}/health", timeout=2).json().get("health") == "true")
    except (httpx.HTTPError, ValueError):
        return False


def _apiserver_ready(credentials: Credentials) -> bool:
    try:
        response = httpx.get(
            f"https://{NODE_IP}:{API_PORT}/readyz",
            verify=ssl.create_default_context(cafile=str(credentials.ca)),
            headers={"Authorization": f"Bearer {credentials.tokens['admin']}"},
            timeout=5,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _node_ready(layout: ClusterLayout) -> bool:
    try:
        node = json.loads(kubectl(layout, "get", "node", NODE_NAME, "-o", "json"))
    except (ServerError, ValueError):
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def down(layout: ClusterLayout, log: Any = None) -> bool:
    """Undo everything the ledger records; False when there was no cluster there."""
    say = log or (lambda message: None)
    if not layout.ledger.exists():
        return False
    ledger = Ledger.load(layout.ledger)
    by_name = {record.name: record for record in ledger.processes}
    say("stopping the Kubernetes components")
    # The kubelet first, so it restarts nothing while the rest go.
    if "kubelet" in by_name:
        processes.stop(by_name["kubelet"], timeout_s=5)
    processes.stop(*(r for r in ledger.processes if r.name not in _RUNTIME_DAEMONS))
    if ledger.cgroup:
        say("stopping every container")
        keep = {by_name[name].pid for name in _RUNTIME_DAEMONS if name in by_name}
        host.kill_cgroup(ledger.cgroup, skip=keep)
    processes.stop(*(by_name[name] for name in _RUNTIME_DAEMONS if name in by_name))
    if ledger.cgroup:
        host.kill_cgroup(ledger.cgroup)
    if "kube-proxy" in by_name:
        # kube-proxy removes its own KUBE-* chains and rules.
        subprocess.run(
            [find_binary("kube-proxy"), "--cleanup"], capture_output=True, check=False, timeout=60
        )
    say("unmounting, removing the network and the data")
    roots = [layout.root]
    if ledger.docker_data_root:
        roots.append(Path(ledger.docker_data_root))
    host.unmount_all(*roots)
    host.remove_network(ledger)
    host.remove_host_paths(ledger, layout.root)
    if ledger.cgroup:
        host.remove_cgroup_tree(ledger.cgroup)
    shutil.rmtree(layout.root)
    return True


def wait_seconds(since: float) -> float:
    return round(time.monotonic() - since, 1)
