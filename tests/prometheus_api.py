"""Queries against the real Prometheus of the e2e stack (its HTTP API), asserting that
Prometheus accepted each query."""

from __future__ import annotations

from typing import Any

import httpx


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any]) -> Any:
    response = await http.get(url, params=params)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (params, body)
    return body["data"]


async def query(http: httpx.AsyncClient, prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's series."""
    data = await _get(http, f"{prometheus}/api/v1/query", {"query": expr})
    result: list[dict[str, Any]] = data["result"]
    return result


async def query_range(
    http: httpx.AsyncClient, prometheus: str, expr: str, start: float, end: float, step: str
) -> list[dict[str, Any]]:
    """A range query's series, as Grafana runs a time-series panel's query."""
    params = {"query": expr, "start": start, "end": end, "step": step}
    data = await _get(http, f"{prometheus}/api/v1/query_range", params)
    result: list[dict[str, Any]] = data["result"]
    return result


async def label_values(
    http: httpx.AsyncClient, prometheus: str, label: str, metric: str
) -> list[str]:
    """What Grafana's ``label_values(metric, label)`` variable query offers."""
    values: list[str] = await _get(
        http, f"{prometheus}/api/v1/label/{label}/values", {"match[]": metric}
    )
    return values


async def metric_exposed(http: httpx.AsyncClient, prometheus: str, name: str) -> bool:
    """Whether a target exposes the metric family (HELP/TYPE), even with no series yet, as
    a labelled counter does until its first increment."""
    metadata = await _get(http, f"{prometheus}/api/v1/targets/metadata", {"metric": name})
    return bool(metadata)
