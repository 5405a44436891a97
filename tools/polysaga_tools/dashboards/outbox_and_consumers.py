"""Outbox and consumers: what waits to be published, what each consumer has still to take,
what it retried or dead-lettered, and the event traffic by type."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from polysaga_tools.dashboards.panels import (
    RATE_WINDOW,
    SERVICE_MATCHER,
    graph,
    new_dashboard,
    prom,
    service_variable,
)

W = RATE_WINDOW
S = SERVICE_MATCHER


def dashboard() -> Dashboard:
    return (
        new_dashboard(
            "polysaga / Outbox and consumers",
            "polysaga-outbox-and-consumers",
            "Transactional outbox backlog and age; JetStream consumers' pending, "
            "redelivered and dead-lettered messages; events published and consumed by type.",
        )
        .with_variable(service_variable("polysaga_outbox_backlog"))
        .with_row(Row("Outbox"))
        .with_panel(
            graph(
                "Outbox backlog",
                "Rows written with a state change and not yet published by the relay.",
                "short",
                prom(f"sum by (job) (polysaga_outbox_backlog{{{S}}})", "{{job}}"),
            )
        )
        .with_panel(
            graph(
                "Oldest unpublished outbox row",
                "Age of the oldest row the relay has not published: grows when it is stuck.",
                "s",
                prom(
                    f"max by (job) (polysaga_outbox_oldest_pending_age_seconds{{{S}}})",
                    "{{job}}",
                ),
            )
        )
        .with_row(Row("Consumers"))
        .with_panel(
            graph(
                "Pending (not yet delivered)",
                "Replicas share one durable consumer and report the same numbers: max.",
                "short",
                prom(
                    f"max by (job, stream) (polysaga_consumer_pending_messages{{{S}}})",
                    "{{job}} ← {{stream}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Being redelivered",
                "Messages a consumer nak'ed or let time out, now delivered again.",
                "short",
                prom(
                    f"max by (job, stream) (polysaga_consumer_redelivered_messages{{{S}}})",
                    "{{job}} ← {{stream}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Dead-lettered per second",
                "Messages moved to the dead-letter subject, by reason. "
                "Alert DeadLettersPresent fires on any.",
                "ops",
                prom(
                    f"sum by (job, reason) (rate(polysaga_dead_lettered_total{{{S}}}[{W}]))",
                    "{{job}}: {{reason}}",
                ),
                width=8,
            )
        )
        .with_row(Row("Events"))
        .with_panel(
            graph(
                "Published per second by type",
                "Events the outbox relays published to JetStream.",
                "ops",
                prom(
                    f"sum by (event_type) (rate(polysaga_events_published_total{{{S}}}[{W}]))",
                    "{{event_type}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Consumed per second by type and outcome",
                "Deliveries finished: handled, duplicate (inbox), retried, dead_lettered.",
                "ops",
                prom(
                    "sum by (event_type, outcome) "
                    f"(rate(polysaga_events_consumed_total{{{S}}}[{W}]))",
                    "{{event_type}} {{outcome}}",
                ),
            )
        )
    )
