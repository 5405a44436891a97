"""The Prometheus alert rules are valid, and promtool's unit tests fire each alert from
synthetic series (and keep it silent on healthy ones)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "observability" / "prometheus"
PROMTOOL = REPO / ".venv" / "bin" / "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: run scripts/bootstrap.sh (it installs Prometheus)")
    return subprocess.run(
        [str(PROMTOOL), *args],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "polysaga-rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_fires_in_promtool_unit_tests() -> None:
    result = promtool("test", "rules", "polysaga-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = (RULES_DIR / "polysaga-rules.test.yml").read_text()
    for alert in (
        "SagaStuck",
        "ConsistencyLagHigh",
        "OutboxBacklogGrowing",
        "DeadLettersPresent",
        "EventsContradictWhatServicesKnow",
        "ConsumerFallingBehind",
    ):
        assert f"alertname: {alert}" in tested, f"no promtool test for {alert}"
