"""One local cluster for every test in this folder (all marked ``cluster``): brought up once per
session by ``polysaga cluster up`` exactly as a user runs it, taken down by ``polysaga cluster
down`` at the end, and the host then compared with its state before ``up``: anything left
behind (a process, mount, link, route, iptables rule, cgroup, sysctl or file) fails the run.

While writing a test, POLYSAGA_TEST_CLUSTER_STATE=F runs the tests against a cluster already up
(``polysaga cluster up --state-file F``), which they then leave running; a run that proves
anything brings up its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.host_state import HostState

HERE = Path(__file__).parent
POLYSAGA = str(Path(sys.executable).parent / "polysaga")


# First, so that the default "-m 'not cluster'" (pyproject.toml) sees the marker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)
            # The session's one cluster comes up in the first test that asks for it.
            item.add_marker(pytest.mark.timeout(3600))


@dataclass(frozen=True)
class LocalCluster:
    state_file: Path
    state: dict[str, Any]
    up_seconds: float

    @property
    def kubeconfig(self) -> str:
        return str(self.state["kubernetes"]["kubeconfig"])

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "kubectl"),
                f"--kubeconfig={self.kubeconfig}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    attached = os.environ.get("POLYSAGA_TEST_CLUSTER_STATE")
    if attached:
        state_file = Path(attached)
        yield LocalCluster(state_file, json.loads(state_file.read_text()), float("nan"))
        return
    before = HostState.capture()
    root = Path(tempfile.mkdtemp(prefix="polysaga-cluster-test-"))
    state_file = root / "state.json"
    argv = ["--state-file", str(state_file), "--data-dir", str(root / "cluster")]
    up = subprocess.run(
        [POLYSAGA, "cluster", "up", *argv], capture_output=True, text=True, timeout=3600
    )
    try:
        if up.returncode != 0:
            raise AssertionError(f"cluster up exited {up.returncode}:\n{up.stderr[-6000:]}")
        ready = json.loads(up.stdout.strip().splitlines()[-1])
        yield LocalCluster(state_file, json.loads(state_file.read_text()), ready["seconds"])
    finally:
        down = subprocess.run(
            [POLYSAGA, "cluster", "down", *argv], capture_output=True, text=True, timeout=600
        )
        left = before.differences(HostState.capture())
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, f"cluster down exited {down.returncode}:\n{down.stderr}"
        assert left == {}, f"cluster down left this behind: {left}"
