"""The operator as the tests install and run it: its chart rendered by helm, and the operator
itself as a process, like the Deployment's container."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from polysaga_tools.servers import find_binary

REPO = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO / "charts" / "polysaga-operator"
CRD_FILE = OPERATOR_CHART / "crds" / "servicedatabases.polysaga.io.yaml"
OPERATOR_NAMESPACE = "polysaga-system"
OPERATOR_RELEASE = "polysaga-operator"
OPERATOR_SERVICE_ACCOUNT = "polysaga-operator"


class RunningOperator:
    def __init__(self, metrics_url: str, log: Path) -> None:
        self.metrics_url = metrics_url
        self.log = log

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def render_operator_chart(*values: str) -> list[dict[str, Any]]:
    """``helm template`` of the operator chart, in the operator's namespace."""
    sets = [arg for value in values for arg in ("--set", value)]
    rendered = subprocess.run(
        [
            find_binary("helm"),
            "template",
            OPERATOR_RELEASE,
            str(OPERATOR_CHART),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--kube-version",
            "v1.34.4",
            *sets,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
