"""The committed Grafana dashboards are the generator's output, and every panel queries
the Prometheus data source through the ``$datasource`` variable."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from polysaga_tools.dashboards import DASHBOARDS, OUTPUT_DIRECTORIES, differences, render_all

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "observability" / "grafana" / "provisioning"


@pytest.mark.parametrize("directory", OUTPUT_DIRECTORIES, ids=str)
def test_committed_dashboards_equal_the_generator_output(directory: Path) -> None:
    assert differences(ROOT / directory) == [], "regenerate with: polysaga dashboards"


def test_a_changed_or_extra_file_is_reported(tmp_path: Path) -> None:
    for name, text in render_all().items():
        (tmp_path / name).write_text(text)
    assert differences(tmp_path) == []
    (tmp_path / "service-red.json").write_text("{}")
    (tmp_path / "old.json").write_text("{}")
    assert differences(tmp_path) == [
        f"{tmp_path / 'service-red.json'}: differs from the generator's output",
        f"{tmp_path / 'old.json'}: not a generated dashboard (renamed or removed?)",
    ]


def test_every_dashboard_is_well_formed() -> None:
    titles, uids = set(), set()
    for name, text in render_all().items():
        model = json.loads(text)
        titles.add(model["title"])
        uids.add(model["uid"])
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in model["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["expr"].strip() and target["datasource"] == panel["datasource"]
                if "$service" in target["expr"]:
                    assert "service" in variables, f"{name}: $service without the variable"
    assert len(titles) == len(uids) == len(DASHBOARDS) == 4


def test_provisioning_points_grafana_at_prometheus_and_the_committed_dashboards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Grafana expands $VAR / ${VAR} in provisioning files; the README sets these two.
    monkeypatch.setenv("POLYSAGA_PROMETHEUS_URL", "http://127.0.0.1:9090")
    monkeypatch.setenv("POLYSAGA_GRAFANA_DASHBOARDS", str(ROOT / OUTPUT_DIRECTORIES[0]))

    def load(path: Path) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(os.path.expandvars(path.read_text()))
        return document

    (prometheus,) = load(PROVISIONING / "datasources" / "prometheus.yaml")["datasources"]
    # The dashboards' $datasource variable defaults to this uid.
    assert (prometheus["type"], prometheus["uid"]) == ("prometheus", "prometheus")
    assert prometheus["url"] == "http://127.0.0.1:9090"
    (provider,) = load(PROVISIONING / "dashboards" / "polysaga.yaml")["providers"]
    assert provider["type"] == "file"
    provided = {p.name for p in Path(provider["options"]["path"]).glob("*.json")}
    assert provided == set(DASHBOARDS)


def test_the_dashboards_command_writes_checks_and_refuses_a_missing_directory(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from polysaga_tools.main import app

    runner = CliRunner()
    into = ["--into", str(tmp_path)]
    assert runner.invoke(app, ["dashboards", "--check", *into]).exit_code == 1
    written = runner.invoke(app, ["dashboards", *into])
    assert written.exit_code == 0 and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        DASHBOARDS
    )
    assert runner.invoke(app, ["dashboards", "--check", *into]).exit_code == 0
    (tmp_path / "saga-overview.json").write_text("{}")
    stale = runner.invoke(app, ["dashboards", "--check", *into])
    # The message wraps at the terminal's width, wherever the temporary path makes it.
    assert stale.exit_code == 1 and "saga-overview.json" in stale.output.replace("\n", "")
    missing = runner.invoke(app, ["dashboards", "--into", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no directory" in missing.output
