"""The local cluster's configuration, read without starting anything: the network rules
(no masquerade, no default route, no upstream DNS, Docker with no network), the settings this
VM needs, and the credentials each component gets."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from polysaga_tools.cluster import addons, components, pki
from polysaga_tools.cluster.layout import (
    API_SERVICE_IP,
    BRIDGE,
    DNS_SERVICE_IP,
    NODE_IP,
    POD_CIDR,
    REGISTRY,
    SERVICE_CIDR,
    ClusterLayout,
)


@pytest.fixture
def layout(tmp_path: Path) -> ClusterLayout:
    return ClusterLayout(tmp_path / "cluster")


@pytest.fixture
def credentials(layout: ClusterLayout) -> pki.Credentials:
    return pki.write_credentials(layout)


def _binaries() -> components.Binaries:
    return components.Binaries(*(f"/bin/{name}" for name in components.Binaries.__annotations__))


def test_pods_get_no_masquerade_no_default_route_and_only_cluster_routes(
    layout: ClusterLayout,
) -> None:
    conflist = components.cni_conflist(layout)
    bridge = conflist["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["bridge"] == BRIDGE
    assert bridge["ipMasq"] is False
    assert bridge["isDefaultGateway"] is False
    assert bridge["ipam"]["routes"] == [{"dst": SERVICE_CIDR, "gw": NODE_IP}]
    (subnet,) = bridge["ipam"]["ranges"][0]
    assert subnet["subnet"] == POD_CIDR and subnet["gateway"] == NODE_IP
    # Docker's FORWARD policy DROP would otherwise stop pod traffic.
    assert any(plugin["type"] == "firewall" for plugin in conflist["plugins"])
    assert ipaddress.ip_address(NODE_IP) in ipaddress.ip_network(POD_CIDR)
    assert not ipaddress.ip_network(POD_CIDR).overlaps(ipaddress.ip_network(SERVICE_CIDR))


def test_cluster_dns_answers_for_the_cluster_only(layout: ClusterLayout) -> None:
    assert "forward" not in addons.COREFILE
    (service,) = [o for o in addons.coredns() if o["kind"] == "Service"]
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP


def test_the_kubelet_has_the_settings_this_vm_needs(
    layout: ClusterLayout, credentials: pki.Credentials
) -> None:
    config = components.kubelet_config(layout, credentials)
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["oomScoreAdj"] == 0
    assert config["cgroupRoot"] == "/polysaga-cluster"
    assert config["address"] == NODE_IP, "a loopback node address is refused by the kubelet"
    assert config["authentication"]["anonymous"]["enabled"] is False
    components.write_configs(layout, credentials)
    resolv = Path(config["resolvConf"]).read_text()
    assert "nameserver" not in resolv, "no pod may be handed an upstream resolver"


def test_containerd_restricts_oom_scores_and_keeps_its_state_in_the_cluster(
    layout: ClusterLayout,
) -> None:
    config = tomllib.loads(components.containerd_config(layout))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"].startswith(f"{REGISTRY}/")
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False
    assert runc["Root"].startswith(str(layout.root))
    assert config["root"].startswith(str(layout.root))
    assert config["state"].startswith(str(layout.root))


def test_docker_builds_with_no_network_and_leaves_iptables_alone(layout: ClusterLayout) -> None:
    argv = components.dockerd_argv(_binaries(), layout, Path("/cache/docker"))
    for flag in ("--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"):
        assert flag in argv
    assert f"--insecure-registry={REGISTRY}" in argv
    assert f"--containerd={layout.containerd_socket}" in argv


def test_every_listener_is_on_the_node_address_or_loopback(
    layout: ClusterLayout, credentials: pki.Credentials
) -> None:
    etcd = components.etcd_argv(_binaries(), layout, components.EtcdPorts(1, 2))
    assert all("127.0.0.1" in a for a in etcd if a.startswith("--listen-"))
    assert f"--bind-address={NODE_IP}" in components.apiserver_argv(
        _binaries(), credentials, components.EtcdPorts(1, 2)
    )
    for argv in (
        components.controller_manager_argv(_binaries(), layout, credentials),
        components.scheduler_argv(_binaries(), layout),
    ):
        assert f"--bind-address={NODE_IP}" in argv
    proxy = components.kube_proxy_config(layout)
    assert proxy["healthzBindAddress"].startswith(NODE_IP)
    assert proxy["nodePortAddresses"] == [f"{NODE_IP}/32"]
    assert f"{NODE_IP}:" in components.registry_config(layout)


def test_each_component_has_its_own_identity(
    layout: ClusterLayout, credentials: pki.Credentials
) -> None:
    rows = credentials.token_file.read_text().splitlines()
    assert len(rows) == len(pki.COMPONENT_USERS)
    assert len(set(credentials.tokens.values())) == len(rows)
    assert any(",system:node:polysaga," in row and '"system:nodes"' in row for row in rows)
    assert credentials.token_file.stat().st_mode & 0o077 == 0
    serving = x509.load_pem_x509_certificate(credentials.apiserver_cert.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    assert {NODE_IP, API_SERVICE_IP} <= addresses
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)


def test_the_local_values_name_the_images_cluster_up_builds() -> None:
    """k8s/local's values (skaffold's local profile) and images.SERVER_TAGS name the same
    references."""
    import yaml

    from polysaga_tools.cluster.images import SERVER_TAGS

    local = Path(__file__).resolve().parents[2] / "k8s" / "local"
    app = yaml.safe_load((local / "polysaga.yaml").read_text())
    operator = yaml.safe_load((local / "polysaga-operator.yaml").read_text())
    built = {name: f"{REGISTRY}/{name}:{tag}" for name, tag in SERVER_TAGS.items()}
    assert app["nats"]["image"] == built["nats"]
    assert app["jaeger"]["image"] == built["jaeger"]
    assert app["prometheus"]["image"] == built["prometheus"]
    assert app["smtp"]["sink"]["image"] == built["mailsink"]
    repositories = operator["databaseImages"]["repositories"]
    assert (
        f"{repositories['postgresql']}:{operator['databaseImages']['ferretdbPostgresqlVersion']}"
        == built["postgres"]
    )
    assert (
        f"{repositories['ferretdb']}:{app['services']['catalog']['database']['version']}"
        == built["ferretdb"]
    )
    assert app["services"]["order"]["database"]["version"] == SERVER_TAGS["postgres"]
