"""The building blocks every polysaga dashboard shares: the ``$datasource`` and ``$service``
variables, Prometheus targets bound to ``$datasource``, and the two panel kinds we use."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models.common import BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# The scrape configuration sets `job` to the service name (polysaga up, and the chart).
SERVICE_MATCHER = 'job=~"$service"'
# Grafana widens this to cover at least four scrapes at any zoom level.
RATE_WINDOW = "$__rate_interval"


def new_dashboard(title: str, uid: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["polysaga"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("browser")
        .with_variable(
            DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .current(VariableOption(selected=True, text="Prometheus", value="prometheus"))
        )
    )


def label_variable(name: str, label: str, metric: str, label_name: str) -> QueryVariable:
    """A multi-select variable over a label's values, "All" by default (matched as ``.*``)."""
    query = f"label_values({metric}, {label_name})"
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def service_variable(metric: str) -> QueryVariable:
    return label_variable("service", "Service", metric, "job")


def prom(expr: str, legend: str, ref_id: str = "A") -> Dataquery:
    return (
        Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE).range()
    )


def graph(
    title: str, description: str, unit: str, *targets: Dataquery, width: int = 12
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(8)
        .span(width)
        .line_width(1)
        .fill_opacity(10)
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single_value(
    title: str, description: str, unit: str, target: Dataquery, width: int = 6
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(4)
        .span(width)
        .graph_mode(BigValueGraphMode.AREA)
        .with_target(target)
    )


def quantile_targets(bucket_rate: str, by: str, legend: str) -> list[Dataquery]:
    """p50, p90, p99 of a histogram: ``bucket_rate`` is the ``rate(..._bucket[...])`` part."""
    group = f"le, {by}" if by else "le"
    return [
        prom(
            f"histogram_quantile({q}, sum by ({group}) ({bucket_rate}))",
            f"{legend}p{int(q * 100)}",
            ref_id,
        )
        for q, ref_id in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
    ]
