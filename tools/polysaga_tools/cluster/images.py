"""The images the cluster runs, made here with no registry but our own: the Debian base
images imported from root filesystems that the bootstrap made with debootstrap, and the
third-party servers (pause, CoreDNS, NATS, PostgreSQL, FerretDB, Prometheus, Jaeger) built
from k8s/images/<name>/Dockerfile around binaries the bootstrap built or installed, then pushed
to the local registry. An image already in the registry is not built again."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from polysaga_tools.cluster.layout import COREDNS_VERSION, REGISTRY, ClusterLayout
from polysaga_tools.servers import ServerError, find_binary

BASE_IMAGE = "polysaga-base:bookworm"
POSTGRES_BASE_IMAGE = "polysaga-postgres-base:bookworm"
IMAGES_DIR = Path(__file__).resolve().parents[3] / "k8s" / "images"


def cluster_share() -> Path:
    """Where the bootstrap links the cluster's root filesystems and static binaries."""
    return Path(sys.executable).parent.parent / "share" / "polysaga-cluster"


@dataclass(frozen=True)
class ThirdPartyImage:
    name: str
    tag: str
    # Files put into the build context: destination name -> source path.
    files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.name}:{self.tag}"


def docker(layout: ClusterLayout, *args: str, input_bytes: bytes | None = None) -> str:
    done = subprocess.run(
        ["docker", *args],
        input=input_bytes,
        capture_output=True,
        check=False,
        env={**os.environ, "DOCKER_HOST": layout.docker_host, "DOCKER_BUILDKIT": "0"},
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise ServerError(f"docker {' '.join(args[:3])} failed: {message[-2000:]}")
    return done.stdout.decode(errors="replace")


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def import_base(layout: ClusterLayout, name: str, rootfs_tar: Path) -> None:
    """``docker import`` of a root filesystem, unless this very one is already imported."""
    if not rootfs_tar.exists():
        raise ServerError(f"no root filesystem {rootfs_tar}; run scripts/bootstrap.sh cluster")
    digest = _digest(rootfs_tar)
    label = "io.polysaga.rootfs"
    try:
        current = docker(
            layout, "image", "inspect", "-f", f'{{{{index .Config.Labels "{label}"}}}}', name
        )
    except ServerError:
        current = ""
    if current.strip() == digest:
        return
    docker(
        layout,
        "import",
        "--change", f"LABEL {label}={digest}",
        "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change", "ENV LANG=C.UTF-8",
        str(rootfs_tar),
        name,
    )  # fmt: skip


def push_base(layout: ClusterLayout, name: str) -> str:
    """The base itself in the registry too, for a pod of one's own (a debugging shell, a test's
    probe): its Python and nothing else."""
    ref = f"{REGISTRY}/{name}"
    repository, tag = name.split(":")
    if not in_registry(ThirdPartyImage(repository, tag)):
        docker(layout, "tag", name, ref)
        docker(layout, "push", ref)
    return ref


def in_registry(image: ThirdPartyImage) -> bool:
    try:
        response = httpx.head(
            f"http://{REGISTRY}/v2/{image.name}/manifests/{image.tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=5,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def build_and_push(layout: ClusterLayout, image: ThirdPartyImage) -> None:
    if in_registry(image):
        return
    recipe = IMAGES_DIR / image.name
    with tempfile.TemporaryDirectory(prefix=f"polysaga-image-{image.name}-") as context:
        for entry in recipe.iterdir():
            shutil.copy2(entry, Path(context) / entry.name)
        for name, source in image.files.items():
            shutil.copy2(source, Path(context) / name)
        docker(layout, "build", "--network=none", "-q", "-t", image.ref, context)
    docker(layout, "push", image.ref)


def node_images() -> list[ThirdPartyImage]:
    """What the node itself needs before any pod starts."""
    share = cluster_share()
    return [
        ThirdPartyImage("pause", "3.10", {"pause": share / "pause"}),
        ThirdPartyImage("coredns", COREDNS_VERSION, {"coredns": Path(find_binary("coredns"))}),
    ]


# The versions of the binaries the bootstrap provides, as the images' tags; skaffold.yaml's local
# profile names the same references (a unit test keeps the two in step).
SERVER_TAGS = {
    "nats": "2.15.1",
    "postgres": "15",
    "ferretdb": "1.24.2",
    "prometheus": "2.42.0",
    "jaeger": "2.13.0",
    "mailsink": "3.11",
}


def server_images() -> list[ThirdPartyImage]:
    """The third-party servers the charts run, from the binaries the local stack uses too."""
    files: dict[str, dict[str, Path]] = {
        "nats": {"nats-server": _real("nats-server")},
        "postgres": {},
        "ferretdb": {"ferretdb": _real("ferretdb")},
        "prometheus": {"prometheus": _real("prometheus")},
        "jaeger": {"jaeger": _real("jaeger")},
        "mailsink": {},
    }
    return [ThirdPartyImage(name, tag, files[name]) for name, tag in SERVER_TAGS.items()]


def _real(binary: str) -> Path:
    return Path(find_binary(binary)).resolve()
