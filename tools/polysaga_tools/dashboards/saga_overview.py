"""Saga overview: how many sagas end and how, how long they take, how many are open or stuck.
The saga metrics come from the order service, which owns the saga."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from polysaga_tools.dashboards.panels import (
    RATE_WINDOW,
    graph,
    new_dashboard,
    prom,
    quantile_targets,
    single_value,
)

W = RATE_WINDOW


def dashboard() -> Dashboard:
    return (
        new_dashboard(
            "polysaga / Saga overview",
            "polysaga-saga-overview",
            "Order sagas: throughput by outcome, duration, in flight and stuck.",
        )
        .with_row(Row("Now"))
        .with_panel(
            single_value(
                "Sagas ended / s",
                "Confirmed plus cancelled sagas per second.",
                "ops",
                prom(f"sum(rate(polysaga_sagas_total[{W}]))", "ended / s"),
            )
        )
        .with_panel(
            single_value(
                "Sagas in flight",
                "Orders placed whose saga has not ended (still PENDING).",
                "short",
                # Every order replica reports the same count from its status table: max.
                prom("max(polysaga_sagas_in_flight)", "in flight"),
            )
        )
        .with_panel(
            single_value(
                "Stuck sagas",
                "Sagas PENDING past their deadline: the deadline sweeper is behind. "
                "Alert SagaStuck fires when this stays above 0.",
                "short",
                prom("max(polysaga_sagas_stuck)", "stuck"),
            )
        )
        .with_panel(
            single_value(
                "Cancelled share",
                "Share of ended sagas that were cancelled (payment refused, stock short, "
                "deadline passed).",
                "percentunit",
                prom(
                    f'sum(rate(polysaga_sagas_total{{outcome="cancelled"}}[{W}]))'
                    f" / sum(rate(polysaga_sagas_total[{W}]))",
                    "cancelled",
                ),
            )
        )
        .with_row(Row("Throughput"))
        .with_panel(
            graph(
                "Sagas per second by outcome",
                "Sagas started (orders placed) and ended, by outcome.",
                "ops",
                prom(f"sum by (outcome) (rate(polysaga_sagas_total[{W}]))", "{{outcome}}"),
                prom(f"sum(rate(polysaga_sagas_started_total[{W}]))", "started", "B"),
            )
        )
        .with_panel(
            graph(
                "Compensations per second",
                "Compensating actions: stock released by inventory, payments refunded.",
                "ops",
                prom(f"sum by (action) (rate(polysaga_compensations_total[{W}]))", "{{action}}"),
            )
        )
        .with_row(Row("Duration and backlog"))
        .with_panel(
            graph(
                "Saga duration",
                "From order placed to confirmed or cancelled (histogram quantiles).",
                "s",
                *quantile_targets(f"rate(polysaga_saga_duration_seconds_bucket[{W}])", "", ""),
            )
        )
        .with_panel(
            graph(
                "Saga duration p99 by outcome",
                "Cancelled sagas include those that waited for their deadline.",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (le, outcome) "
                    f"(rate(polysaga_saga_duration_seconds_bucket[{W}])))",
                    "{{outcome}} p99",
                ),
            )
        )
        .with_panel(
            graph(
                "Sagas in flight and stuck",
                "Open sagas over time; stuck ones are past their deadline.",
                "short",
                prom("max(polysaga_sagas_in_flight)", "in flight"),
                prom("max(polysaga_sagas_stuck)", "stuck", "B"),
                width=24,
            )
        )
    )
