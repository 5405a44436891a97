"""``polysaga bench`` end to end on a stack of its own: a short run prints the promised JSON,
every figure is there, measured ones are positive and the derived ones (the bound, the
ratios) agree with the figures they come from.
Performance targets are measured by the benchmark, never asserted here (BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SERVICES = {
    "order",
    "inventory",
    "payment",
    "orchestrator",
    "sales",
    "user",
    "notification",
    "catalog",
    "order-view",
    "gateway",
}


@pytest.mark.timeout(1500)
def test_a_short_bench_prints_every_figure_consistently(tmp_path: Path) -> None:
    plot = tmp_path / "bench.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "polysaga_tools",
            "bench",
            "--duration",
            "10",
            "--json",
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    body = json.loads(run.stdout)

    assert set(body) == {
        "max_sagas_per_s",
        "at_10_per_s",
        "at_100_per_s",
        "at_max",
        "closed_loop",
        "limits",
        "bound",
        "bound_sagas_per_s",
        "ratio_to_bound",
        "peer",
        "rss_mb",
        "durability",
        "styles",
    }
    assert set(body["styles"]) == {"choreography", "orchestration"}
    choreography = body["styles"]["choreography"]
    assert {k: body[k] for k in choreography} == choreography  # the top level is its figures
    # The orchestrated saga through the same phases, on the same stack: its own figures.
    orchestrated = body["styles"]["orchestration"]
    assert set(orchestrated) == set(choreography)
    assert orchestrated["at_10_per_s"]["saga_latency_ms"]["p50"] > 0
    assert orchestrated["at_10_per_s"]["sagas"] > 0
    for phase in ("at_10_per_s", "at_100_per_s"):
        figures = body[phase]
        latency = figures["saga_latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"]
        assert set(figures["hops_ms"]) == {
            "created_to_published",
            "published_to_delivered",
            "delivered_to_committed",
        }
        for hop in figures["hops_ms"].values():
            assert hop["p50"] is not None and 0 <= hop["p50"] <= hop["p99"]
        # Measured, not counted from the code: every process spent CPU, each saga commits.
        assert figures["sagas"] > 0
        cpu = figures["cpu_ms_per_saga"]
        assert {"order", "inventory", "payment", "postgres", "nats", "bench"} <= set(cpu)
        assert all(ms >= 0 for ms in cpu.values()) and figures["cpu_ms_per_saga_total"] > 0
        costs = figures["costs_per_saga"]
        assert costs["postgres_commits"] >= 4  # place, reserve, charge, confirm at least
        assert 4 <= costs["postgres_write_transactions"] <= costs["postgres_commits"]
        assert costs["jetstream_messages"] >= 4
        assert costs["view_writes"] > 0 and costs["relay_commits"] > 0
    assert set(body["limits"]) == {
        "jetstream_publishes_per_s",
        "postgres_commits_per_s",
        "mongo_writes_per_s",
        "mongo_writes_per_s_4_connections",
    }
    assert all(v > 0 for v in body["limits"].values())
    assert body["closed_loop"]["sagas_per_s"] > 0

    # The bound is each measured limit over the measured cost of a saga, the smallest wins.
    costed = body["at_max"] or body["at_10_per_s"]
    assert body["bound"]["costs_from"] == ("at_max" if body["at_max"] else "at_10_per_s")
    limits, costs = body["limits"], costed["costs_per_saga"]
    by = {
        "by_postgres_commits": limits["postgres_commits_per_s"]
        / costs["postgres_write_transactions"],
        "by_jetstream_publishes": limits["jetstream_publishes_per_s"] / costs["jetstream_messages"],
        "by_mongo_writes": limits["mongo_writes_per_s"] / costs["view_writes"],
    }
    for key, value in by.items():
        assert body["bound"][key] == pytest.approx(value, rel=0.02)
    assert body["bound_sagas_per_s"] == pytest.approx(min(by.values()), rel=0.02)
    if body["max_sagas_per_s"] > 0:
        assert body["ratio_to_bound"] == pytest.approx(
            body["max_sagas_per_s"] / body["bound_sagas_per_s"], rel=1e-3
        )

    peer = body["peer"]
    dbos = peer["dbos"]
    assert dbos["closed_loop_sagas_per_s"] > 0
    assert sum(dbos["outcomes"].values()) == dbos["closed_loop_orders"]
    assert peer["closed_loop_ratio"] == pytest.approx(
        body["closed_loop"]["sagas_per_s"] / dbos["closed_loop_sagas_per_s"], rel=1e-2
    )
    assert peer["low_load_p99_ms"]["dbos"] > 0
    appends = peer["eventsourcing_appends"]
    assert appends["eventsourcing_appends_per_s"] > 0 and appends["polysaga_appends_per_s"] > 0

    assert "sync_always_max_sagas_per_s" in body["durability"]
    assert set(body["rss_mb"]) == SERVICES
    assert all(mb > 0 for mb in body["rss_mb"].values())
    assert plot.stat().st_size > 10_000  # a PNG with three panels drawn


def test_a_plot_path_that_is_not_png_is_refused_before_any_work() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "polysaga_tools", "bench", "--plot", "out.svg"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert ".png" in run.stderr
