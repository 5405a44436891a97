"""Running helm and kubectl from the tests: the binaries the bootstrap links into .venv/bin
(kubectl from the machine), rendered manifests as parsed documents."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHARTS = REPO / "charts"
APP_CHART = CHARTS / "polysaga"
OPERATOR_CHART = CHARTS / "polysaga-operator"
K8S = REPO / "k8s"
VENV_BIN = Path(sys.executable).parent

# Every service of the application chart, as the chart names it.
SERVICES = (
    "order",
    "inventory",
    "payment",
    "orchestrator",
    "sales",
    "user",
    "catalog",
    "order-view",
    "notification",
    "gateway",
)


def tool(name: str) -> str:
    """The path of a tool the bootstrap provides; missing is a loud failure, never a skip."""
    found = VENV_BIN / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        raise AssertionError(f"{name} not found in {VENV_BIN} or on PATH: run scripts/bootstrap.sh")
    return on_path


def run(
    argv: list[str], *, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def set_args(values: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in values.items():
        rendered = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--set", f"{key}={rendered}"]
    return args


def helm_template(
    chart: Path,
    *,
    release: str = "polysaga",
    namespace: str = "polysaga",
    values_files: Iterable[Path] = (),
    values: Mapping[str, Any] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    argv = [tool("helm"), "template", release, str(chart), "--namespace", namespace]
    argv += ["--include-crds"]
    for path in values_files:
        argv += ["--values", str(path)]
    argv += set_args(values or {})
    return run(argv, check=check)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(chart: Path, **kwargs: Any) -> list[dict[str, Any]]:
    return documents(helm_template(chart, **kwargs).stdout)


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def by_name(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in of_kind(docs, kind):
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} rendered")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or name -> valueFrom for references."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
