"""The committed Grafana dashboards against a real Prometheus scraping the e2e stack after a
demo run (`polysaga demo --plot`, which also checks the plot): every panel's expression runs
as Grafana would run it and shows data, its metrics exist, and every variable has values."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import Stack
from prometheus_api import label_values, metric_exposed, query, query_range

DASHBOARDS = Path(__file__).resolve().parents[2] / "observability" / "grafana" / "dashboards"

# Grafana's values for the template variables: "All" of a multi-value variable is its
# allValue (.*); $__rate_interval covers at least four 1 s scrapes at a 5 s step, with room
# for scrapes delayed on a busy machine.
SUBSTITUTIONS = {"$__rate_interval": "15s", "$service": ".*", "$read_model": ".*"}
STEP = "5s"

# Panels that may show nothing after a healthy demo run, and why. Their queries must still
# be accepted, and the metrics they name must be exposed.
LEGITIMATELY_EMPTY = {
    ("outbox-and-consumers.json", "Dead-lettered per second"): (
        "nothing is dead-lettered when every message is well-formed and handled; the "
        "counter is labelled by reason, so it has no series before the first dead letter"
    ),
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    expressions: list[str]


@dataclass(frozen=True)
class DemoRun:
    started: float  # Unix time
    result: subprocess.CompletedProcess[str]
    plot: Path


def panels() -> list[Panel]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text())
        for panel in model["panels"]:
            if panel["type"] != "row":
                exprs = [t["expr"] for t in panel["targets"]]
                found.append(Panel(path.name, panel["title"], exprs))
    return found


def variable_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, variable, metric, label) of every label_values() variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
                assert match, f"{path.name} ${variable['name']}: {variable['query']}"
                found.append((path.name, variable["name"], match[1], match[2]))
    return found


def substituted(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a template variable the test does not know: {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bpolysaga_\w+", expr))


def families(name: str) -> list[str]:
    """The names Prometheus' metadata may list a sample's family under: the text format
    keeps a counter's ``_total``, OpenMetrics drops it; a histogram's samples add suffixes."""
    return [name, re.sub(r"_(bucket|count|sum|total)$", "", name)]


async def shows_data(http: httpx.AsyncClient, prometheus: str, panel: Panel, since: float) -> bool:
    """Whether a panel's queries, run over the range as Grafana runs them, have a point to
    draw (histogram_quantile over no observations gives NaN, which draws nothing)."""
    for expr in panel.expressions:
        series = await query_range(http, prometheus, substituted(expr), since, time.time(), STEP)
        if any(math.isfinite(float(v)) for s in series for _, v in s["values"]):
            return True
    return False


@pytest.fixture(scope="module")
def demo_run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    plot = tmp_path_factory.mktemp("plot") / "demo.png"
    started = time.time()
    result = stack.cli(
        "demo",
        "--orders", "30",
        "--concurrency", "8",
        "--payment-failure-rate", "0.25",
        "--json",
        "--plot", str(plot),
    )  # fmt: skip
    # Exit 1 means the run completed and an invariant was reported violated: the demo's
    # invariants are the saga and read-side tests' subject; here the load and the plot
    # matter, so only a failed run (exit 2, or no report) stops these tests.
    assert result.returncode in (0, 1), result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["invariants"]["every_saga_ended"], report
    return DemoRun(started, result, plot)


def test_demo_writes_the_plot(demo_run: DemoRun) -> None:
    report = json.loads(demo_run.result.stdout)
    assert report["orders"] == 30 and report["confirmed"] > 0 and report["cancelled"] > 0
    assert f"plot written to {demo_run.plot}" in " ".join(demo_run.result.stderr.split())
    data = demo_run.plot.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    assert int.from_bytes(data[16:20], "big") > 0 and int.from_bytes(data[20:24], "big") > 0
    assert len(data) > 20_000, "three panels with lines and labels, not a blank image"


def order_sagas_started(stack: Stack) -> float:
    text = httpx.get(f"{stack.url('order')}/metrics", timeout=10).text
    (line,) = [s for s in text.splitlines() if s.startswith("polysaga_sagas_started_total ")]
    return float(line.split()[1])


def test_a_plot_into_a_missing_directory_is_refused_before_any_order(
    stack: Stack, tmp_path: Path
) -> None:
    before = order_sagas_started(stack)
    target = tmp_path / "no-such-directory" / "demo.png"
    result = stack.cli("demo", "--orders", "5", "--plot", str(target))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not exist" in result.stderr and "no-such-directory" in result.stderr
    assert not target.parent.exists()
    assert order_sagas_started(stack) == before, "the demo placed orders anyway"


async def test_every_dashboard_panel_shows_data_from_the_demo(
    demo_run: DemoRun, stack: Stack, http: httpx.AsyncClient
) -> None:
    prometheus = stack.state["prometheus"]
    assert prometheus, "the e2e stack runs with --with-prometheus"
    all_panels = panels()
    assert {p.dashboard for p in all_panels} == {
        "saga-overview.json",
        "consistency-lag.json",
        "outbox-and-consumers.json",
        "service-red.json",
    }
    assert set(LEGITIMATELY_EMPTY) <= {(p.dashboard, p.title) for p in all_panels}

    # Prometheus scrapes every second; give it generous time for the demo's last state.
    pending = list(all_panels)  # every panel's queries run at least once: Prometheus parses them
    deadline = time.monotonic() + 60
    while True:
        for panel in list(pending):
            if await shows_data(http, prometheus, panel, since=demo_run.started - 5):
                pending.remove(panel)
        empty = [p for p in pending if (p.dashboard, p.title) not in LEGITIMATELY_EMPTY]
        if not empty:
            break
        assert time.monotonic() < deadline, {(p.dashboard, p.title): p.expressions for p in empty}
        await asyncio.sleep(1.0)

    # Every metric a panel names exists: it has series, or (a labelled counter never
    # incremented) a target exposes its family.
    names = {name for p in all_panels for e in p.expressions for name in metric_names(e)}
    assert names, "the dashboards query polysaga metrics"
    assert not await metric_exposed(http, prometheus, "polysaga_no_such_metric")
    for name in sorted(names):
        if not await query(http, prometheus, f"group({name})"):
            exposed = [await metric_exposed(http, prometheus, f) for f in families(name)]
            assert any(exposed), f"no target exposes {name}"


async def test_every_dashboard_variable_offers_values(
    demo_run: DemoRun, stack: Stack, http: httpx.AsyncClient
) -> None:
    prometheus = stack.state["prometheus"]
    variables = variable_queries()
    assert {(d, v) for d, v, _, _ in variables} >= {
        ("service-red.json", "service"),
        ("consistency-lag.json", "read_model"),
    }
    for dashboard, variable, metric, label in variables:
        values = await label_values(http, prometheus, label, metric)
        assert values, f"{dashboard}: ${variable} would offer nothing"
        if variable == "read_model":
            assert "order-view" in values
