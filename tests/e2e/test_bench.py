"""``polysaga bench`` end to end on a stack of its own: a short run prints the promised JSON,
every figure is positive and the derived ones agree with the figures they come from.
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
        "at_100_per_s",
        "limits",
        "bound_sagas_per_s",
        "ratio_to_bound",
        "peer",
        "rss_mb",
        "durability",
    }
    assert set(body["at_100_per_s"]) == {"saga_latency_ms", "consistency_lag_ms"}
    for figure in body["at_100_per_s"].values():
        assert set(figure) == {"p50", "p99"}
        assert 0 < figure["p50"] <= figure["p99"]
    assert set(body["limits"]) == {"jetstream_publishes_per_s", "postgres_commits_per_s"}
    assert all(v > 0 for v in body["limits"].values())
    assert body["max_sagas_per_s"] > 0
    assert body["durability"]["sync_always_max_sagas_per_s"] > 0

    # The bound is the arithmetic of BENCHMARKS.md: 10 commits and 5 publishes per saga.
    limits = body["limits"]
    bound = min(limits["postgres_commits_per_s"] / 10, limits["jetstream_publishes_per_s"] / 5)
    assert body["bound_sagas_per_s"] == pytest.approx(bound, abs=0.1)
    assert body["ratio_to_bound"] == pytest.approx(
        body["max_sagas_per_s"] / body["bound_sagas_per_s"], rel=1e-3
    )

    peer = body["peer"]
    assert set(peer) == {"eventsourcing_appends_per_s", "polysaga_appends_per_s", "ratio"}
    assert peer["eventsourcing_appends_per_s"] > 0 and peer["polysaga_appends_per_s"] > 0
    assert peer["ratio"] == pytest.approx(
        peer["polysaga_appends_per_s"] / peer["eventsourcing_appends_per_s"], rel=1e-2
    )

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
