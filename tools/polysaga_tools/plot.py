"""One PNG of a load run over time — throughput, saga latency, consistency lag — for people
who would rather look than read (``polysaga demo --plot``, ``polysaga bench``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@dataclass(frozen=True)
class RunSample:
    """What the run looked like in the second before ``t_s`` (seconds since it started).
    A quantile is None when nothing was observed in that window."""

    t_s: float
    completed_per_s: float
    saga_latency_p50_ms: float | None
    saga_latency_p99_ms: float | None
    lag_p50_ms: float | None
    lag_p99_ms: float | None


def _values(samples: Sequence[RunSample], field: str) -> list[float]:
    # None becomes NaN, which matplotlib draws as a gap rather than a drop to zero.
    values = (getattr(s, field) for s in samples)
    return [math.nan if v is None else float(v) for v in values]


def plot_run(samples: Sequence[RunSample], path: Path, title: str) -> None:
    """Write three stacked panels sharing the time axis to ``path`` (PNG)."""
    if not samples:
        raise ValueError("no samples to plot")
    # A Figure with its own Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(9, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    throughput, latency, lag = figure.subplots(3, 1, sharex=True)
    t = [s.t_s for s in samples]

    throughput.plot(t, _values(samples, "completed_per_s"), color="tab:blue", marker=".")
    throughput.set_ylabel("sagas completed / s")
    throughput.set_ylim(bottom=0)

    for axes, prefix, what in (
        (latency, "saga_latency", "saga latency (ms)"),
        (lag, "lag", "order-view lag (ms)"),
    ):
        axes.plot(t, _values(samples, f"{prefix}_p50_ms"), label="p50", marker=".")
        axes.plot(t, _values(samples, f"{prefix}_p99_ms"), label="p99", marker=".")
        axes.set_ylabel(what)
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left")

    for axes in (throughput, latency, lag):
        axes.grid(True, alpha=0.3)
    lag.set_xlabel("seconds since the run started")
    figure.suptitle(title)
    figure.savefig(path, format="png")
