"""Grafana dashboards as code (grafana-foundation-sdk): each module builds one dashboard;
``polysaga dashboards`` writes them as the JSON committed under observability/grafana and
the chart. Every panel's expressions are run against a real Prometheus in the e2e tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from polysaga_tools.dashboards import (
    consistency_lag,
    outbox_and_consumers,
    saga_overview,
    service_red,
)

# File name -> builder; the file names are what Grafana's provisioning and the chart load.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "saga-overview.json": saga_overview.dashboard,
    "consistency-lag.json": consistency_lag.dashboard,
    "outbox-and-consumers.json": outbox_and_consumers.dashboard,
    "service-red.json": service_red.dashboard,
}


def render(builder: Dashboard) -> str:
    """The dashboard's JSON model, stable across runs (sorted keys) so diffs stay small."""
    model = builder.build()
    # Grafana keys panel state (links, edits, "view panel") by id; the SDK leaves ids unset.
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    text = JSONEncoder(sort_keys=True, indent=2).encode(model)
    json.loads(text)  # the encoder's output is JSON by contract; fail here, not in Grafana
    return text + "\n"


def render_all() -> dict[str, str]:
    return {name: render(build()) for name, build in DASHBOARDS.items()}


# Where the generated JSON is committed, relative to the repository root: Grafana's file
# provisioning reads the first, the Helm chart turns the second into ConfigMaps.
OUTPUT_DIRECTORIES = (Path("observability/grafana/dashboards"), Path("charts/polysaga/dashboards"))


def write(directory: Path) -> list[Path]:
    """Write every dashboard into ``directory`` (which must exist); returns the files."""
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def differences(directory: Path) -> list[str]:
    """How ``directory`` differs from what the generator writes: empty when in step."""
    problems = []
    for name, text in render_all().items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from the generator's output")
    for path in sorted(directory.glob("*.json")):
        if path.name not in DASHBOARDS:
            problems.append(f"{path}: not a generated dashboard (renamed or removed?)")
    return problems
