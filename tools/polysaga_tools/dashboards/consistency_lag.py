"""Consistency lag: how long after an event happened a read model or replica applied it,
and how many events its consumer has still to deliver."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from polysaga_tools.dashboards.panels import (
    RATE_WINDOW,
    SERVICE_MATCHER,
    graph,
    label_variable,
    new_dashboard,
    prom,
    service_variable,
)

W = RATE_WINDOW
READ_MODEL = 'read_model=~"$read_model"'
LAG_BUCKETS = f"polysaga_consistency_lag_seconds_bucket{{{READ_MODEL}}}"


def dashboard() -> Dashboard:
    builder = (
        new_dashboard(
            "polysaga / Consistency lag",
            "polysaga-consistency-lag",
            "Read models and replicas: event time to applied (ce-time to now), and the "
            "events their consumers have not yet been delivered.",
        )
        .with_variable(
            label_variable(
                "read_model", "Read model", "polysaga_consistency_lag_seconds_count", "read_model"
            )
        )
        .with_variable(service_variable("polysaga_consumer_pending_messages"))
        .with_row(Row("Lag per read model"))
    )
    for q in (0.5, 0.9, 0.99):
        builder = builder.with_panel(
            graph(
                f"Lag p{int(q * 100)} per read model",
                f"{int(q * 100)}th percentile of event time to applied, per read model.",
                "s",
                prom(
                    f"histogram_quantile({q}, sum by (le, read_model) (rate({LAG_BUCKETS}[{W}])))",
                    "{{read_model}}",
                ),
                width=8,
            )
        )
    return (
        builder.with_panel(
            graph(
                "Events applied per second per read model",
                "How many events each read model applied (the lag histogram's count).",
                "ops",
                prom(
                    "sum by (read_model) (rate(polysaga_consistency_lag_seconds_count"
                    f"{{{READ_MODEL}}}[{W}]))",
                    "{{read_model}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Mean lag per read model",
                "Sum over count of the lag histogram: outliers pull it up before p50 moves.",
                "s",
                prom(
                    "sum by (read_model) (rate(polysaga_consistency_lag_seconds_sum"
                    f"{{{READ_MODEL}}}[{W}]))"
                    " / sum by (read_model) (rate(polysaga_consistency_lag_seconds_count"
                    f"{{{READ_MODEL}}}[{W}]))",
                    "{{read_model}}",
                ),
            )
        )
        .with_row(Row("Events behind"))
        .with_panel(
            graph(
                "Events not yet delivered, per service and stream",
                "Messages in the stream the service's durable consumer has not been "
                "delivered yet (replicas share the consumer: max).",
                "short",
                prom(
                    "max by (job, stream) "
                    f"(polysaga_consumer_pending_messages{{{SERVICE_MATCHER}}})",
                    "{{job}} ← {{stream}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Events delivered, not yet acknowledged",
                "Messages being processed (or waiting for redelivery) by the consumer.",
                "short",
                prom(
                    "max by (job, stream) "
                    f"(polysaga_consumer_ack_pending_messages{{{SERVICE_MATCHER}}})",
                    "{{job}} ← {{stream}}",
                ),
            )
        )
    )
