"""The images the cluster runs, made here with no registry but our own: the Debian base
images imported from root filesystems that the bootstrap made with debootstrap, and the
third-party servers (pause, CoreDNS, NATS, PostgreSQL, FerretDB, Prometheus, Jaeger) built
from k8s/images/<name>/Dockerfile around binaries the bootstrap built or installed, then pushed
to the local registry. An image already in the registry is not built again unless its recipe
changed: each carries the digest of what it was built from (its recipe's files, the binaries
put in, the base images) as a label, and the registry's copy is compared by that label."""

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


ROOTFS_LABEL = "io.polysaga.rootfs"


def _label(layout: ClusterLayout, name: str, label: str) -> str:
    """A label of a local image; empty when there is no such image or label."""
    try:
        found = docker(
            layout, "image", "inspect", "-f", f'{{{{index .Config.Labels "{label}"}}}}', name
        )
    except ServerError:
        return ""
    return found.strip().replace("<no value>", "")


def import_base(layout: ClusterLayout, name: str, rootfs_tar: Path) -> None:
    """``docker import`` of a root filesystem, unless this very one is already imported."""
    if not rootfs_tar.exists():
        raise ServerError(f"no root filesystem {rootfs_tar}; run scripts/bootstrap.sh cluster")
    digest = _digest(rootfs_tar)
    label = ROOTFS_LABEL
    if _label(layout, name, label) == digest:
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
    current = _label(layout, name, ROOTFS_LABEL)
    if registry_label(ThirdPartyImage(repository, tag), ROOTFS_LABEL) != current:
        docker(layout, "tag", name, ref)
        docker(layout, "push", ref)
    return ref


RECIPE_LABEL = "io.polysaga.recipe"


def recipe_digest(layout: ClusterLayout, image: ThirdPartyImage) -> str:
    """What ``image`` is built from: its recipe's files, the files put into its context, and
    the root filesystem of the base image its Dockerfile names (by ``import_base``'s label)."""
    sha = hashlib.sha256()
    recipe = IMAGES_DIR / image.name
    inputs = {entry.name: entry for entry in recipe.iterdir()} | dict(image.files)
    for name in sorted(inputs):
        sha.update(f"{name}={_digest(inputs[name])}\n".encode())
    dockerfile = (recipe / "Dockerfile").read_text()
    for base in (BASE_IMAGE, POSTGRES_BASE_IMAGE):
        if f"={base}" in dockerfile:
            sha.update(f"{base}={_label(layout, base, ROOTFS_LABEL)}\n".encode())
    return sha.hexdigest()[:16]


def build_and_push(layout: ClusterLayout, image: ThirdPartyImage) -> None:
    digest = recipe_digest(layout, image)
    if registry_label(image, RECIPE_LABEL) == digest:
        return
    recipe = IMAGES_DIR / image.name
    with tempfile.TemporaryDirectory(prefix=f"polysaga-image-{image.name}-") as context:
        for entry in recipe.iterdir():
            shutil.copy2(entry, Path(context) / entry.name)
        for name, source in image.files.items():
            shutil.copy2(source, Path(context) / name)
        docker(
            layout, "build", "--network=none", "-q",
            "--label", f"{RECIPE_LABEL}={digest}", "-t", image.ref, context,
        )  # fmt: skip
    docker(layout, "push", image.ref)


def registry_label(image: ThirdPartyImage, label: str) -> str | None:
    """A label of the image the registry holds under ``image.ref``; None if it holds none."""
    base = f"http://{REGISTRY}/v2/{image.name}"
    try:
        manifest = httpx.get(
            f"{base}/manifests/{image.tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        if manifest.status_code != 200:
            return None
        config = httpx.get(f"{base}/blobs/{manifest.json()['config']['digest']}", timeout=10)
        config.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    labels = config.json().get("config", {}).get("Labels") or {}
    value = labels.get(label)
    return str(value) if value is not None else None


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
