"""Service RED: request rate, errors and duration per service and route."""

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
REQUESTS = f"polysaga_http_requests_total{{{SERVICE_MATCHER}}}"
BY = "job, route"


def _error_ratio(status: str) -> str:
    """Share of requests answered with ``status`` (a regex); 0, not "no data", for a route
    that had requests and no such answer."""
    errors = (
        f'rate(polysaga_http_requests_total{{{SERVICE_MATCHER}, status_code=~"{status}"}}[{W}])'
    )
    total = f"sum by ({BY}) (rate({REQUESTS}[{W}]))"
    return f"(sum by ({BY}) ({errors}) or {total} * 0) / {total}"


def dashboard() -> Dashboard:
    return (
        new_dashboard(
            "polysaga / Service RED",
            "polysaga-service-red",
            "Rate, errors and duration of every service's HTTP routes.",
        )
        .with_variable(service_variable("polysaga_http_requests_total"))
        .with_row(Row("Rate and errors"))
        .with_panel(
            graph(
                "Requests per second",
                "Per service and route template.",
                "reqps",
                prom(f"sum by ({BY}) (rate({REQUESTS}[{W}]))", "{{job}} {{route}}"),
                width=24,
            )
        )
        .with_panel(
            graph(
                "Server error ratio (5xx)",
                "Share of requests answered 5xx: failures of ours.",
                "percentunit",
                prom(_error_ratio("5.."), "{{job}} {{route}}"),
            )
        )
        .with_panel(
            graph(
                "Client error ratio (4xx)",
                "Share answered 4xx: bad input, unknown resources, conflicts.",
                "percentunit",
                prom(_error_ratio("4.."), "{{job}} {{route}}"),
            )
        )
        .with_row(Row("Duration"))
        .with_panel(
            graph(
                "Request duration p50",
                "Median time to serve a request, per service and route.",
                "s",
                prom(
                    f"histogram_quantile(0.5, sum by (le, {BY}) "
                    f"(rate(polysaga_http_request_duration_seconds_bucket{{{SERVICE_MATCHER}}}[{W}])))",
                    "{{job}} {{route}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Request duration p99",
                "99th percentile time to serve a request, per service and route.",
                "s",
                prom(
                    f"histogram_quantile(0.99, sum by (le, {BY}) "
                    f"(rate(polysaga_http_request_duration_seconds_bucket{{{SERVICE_MATCHER}}}[{W}])))",
                    "{{job}} {{route}}",
                ),
            )
        )
    )
