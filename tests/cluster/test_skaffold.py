"""skaffold's local profile on the live cluster: `skaffold dev -p local` rebuilds and redeploys a
changed service (the test changes a route's summary in a copy of the repository and waits for
the new pod to serve it), and `skaffold delete -p local` removes what skaffold deployed. These
run last (this module sorts last): delete takes the application away."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.conftest import LocalCluster
from polysaga_tools.cluster.deploy import environment
from polysaga_tools.cluster.layout import ClusterLayout

REPO = Path(__file__).resolve().parents[2]
SKAFFOLD = str(Path(sys.executable).parent / "skaffold")
# What skaffold reads: the build context (.dockerignore lets in services/, operator/ and the
# wheelhouse), skaffold.yaml, the charts and the local values (k8s/local).
COPIED = ("Dockerfile", ".dockerignore", "skaffold.yaml", "charts", "k8s", "services", "operator")


def _env(cluster: LocalCluster) -> dict[str, str]:
    layout = ClusterLayout(Path(cluster.state["kubernetes"]["data_dir"]))
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return {**os.environ, **environment(layout), "PATH": path}


@pytest.fixture
def repository_copy() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="polysaga-skaffold-"))
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    (root / ".polysaga").mkdir()
    shutil.copytree(REPO / ".polysaga" / "wheelhouse", root / ".polysaga" / "wheelhouse")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _summaries(gateway: str) -> set[str]:
    try:
        document = httpx.get(f"{gateway}/schema/openapi.json", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return set()
    return {op.get("summary", "") for path in document["paths"].values() for op in path.values()}


def test_skaffold_dev_redeploys_a_changed_service(
    local_cluster: LocalCluster, repository_copy: Path
) -> None:
    gateway = local_cluster.state["services"]["gateway"]
    marker = f"A user's orders, as redeployed by skaffold dev ({uuid.uuid4().hex[:8]})"
    log = repository_copy / "skaffold-dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [SKAFFOLD, "dev", "-p", "local", "--kube-context=polysaga-local",
             "--cleanup=false", "--port-forward=false", "--trigger=polling",
             "--watch-poll-interval=1000"],
            cwd=repository_copy, env=_env(local_cluster), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 1200
            while b"Watching for changes" not in log.read_bytes():
                assert dev.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(2)
            source = repository_copy / "services" / "gateway" / "http.py"
            text = source.read_text()
            assert "A user's orders from the order-view read model" in text
            source.write_text(
                text.replace("A user's orders from the order-view read model", marker)
            )
            # The forward follows the Service to whichever pod serves it: the new one, once the
            # old one is gone.
            while not any(marker in summary for summary in _summaries(gateway)):
                assert dev.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(2)
        finally:
            dev.terminate()
            dev.wait(60)


def test_skaffold_delete_removes_what_it_deployed(local_cluster: LocalCluster) -> None:
    done = subprocess.run(
        [SKAFFOLD, "delete", "-p", "local", "--kube-context=polysaga-local"],
        cwd=REPO, env=_env(local_cluster), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    releases = subprocess.run(
        [str(Path(sys.executable).parent / "helm"), "list", "-A", "-q",
         f"--kubeconfig={local_cluster.kubeconfig}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert releases == []
    deadline = time.monotonic() + 300
    while local_cluster.json("get", "deployments", "-n", "polysaga")["items"]:
        assert time.monotonic() < deadline, "deployments left after skaffold delete"
        time.sleep(2)
