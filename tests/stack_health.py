"""Whether a running stack is still healthy after a test was hostile to it: no service answered
with a 5xx (by each service's own HTTP metrics), no service logged an unhandled error, no
process was restarted by the supervisor, and every durable consumer is live and drained
(importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import nats
from prometheus_client.parser import text_string_to_metric_families

from polysaga.events import declaration

# What a service logs when a request or a consumer failed in a way it did not handle.
_ERROR_MARKS = ("unhandled error", "Traceback (most recent call last)", "gave up on")


async def server_errors(http: httpx.AsyncClient, state: dict[str, Any]) -> dict[str, float]:
    """5xx responses counted by each instance's ``polysaga_http_requests_total``, by
    instance, method, route and status."""
    counts: dict[str, float] = {}
    for service, urls in state["instances"].items():
        for index, url in enumerate(urls):
            text = (await http.get(f"{url}/metrics")).raise_for_status().text
            for family in text_string_to_metric_families(text):
                if family.name != "polysaga_http_requests":
                    continue
                for sample in family.samples:
                    status = sample.labels.get("status_code", "")
                    if sample.name.endswith("_total") and status.startswith("5"):
                        key = (
                            f"{service}#{index + 1} {sample.labels.get('method')}"
                            f" {sample.labels.get('route')} {status}"
                        )
                        counts[key] = counts.get(key, 0.0) + sample.value
    return counts


class LogWatch:
    """The service logs from the moment the watch was made."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._logs = Path(state["data_dir"]) / "logs"
        self._names = [
            path.name for path in self._logs.glob("*.log") if self._is_service(path.stem, state)
        ]
        self._offsets = {name: (self._logs / name).stat().st_size for name in self._names}

    @staticmethod
    def _is_service(stem: str, state: dict[str, Any]) -> bool:
        return stem.split("#")[0] in state["instances"]

    def errors(self) -> list[str]:
        """Lines written since the watch began that report an unhandled failure."""
        found = []
        for name in self._names:
            with open(self._logs / name, "rb") as log:
                log.seek(self._offsets[name])
                lines = log.read().decode("utf-8", "replace").splitlines()
            for number, line in enumerate(lines):
                if any(mark in line for mark in _ERROR_MARKS):
                    # With what follows: a traceback's frames and its exception.
                    found.append(f"{name}: " + "\n".join(lines[number : number + 40]))
        return found


def restarts(state_file: Path) -> dict[str, int]:
    data: dict[str, Any] = json.loads(state_file.read_text())
    return {name: int(count) for name, count in (data.get("restarts") or {}).items()}


async def consumers_drained(state: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    """Wait until every declared durable consumer has nothing pending and nothing awaiting an
    ack; return what is left behind if the time runs out (empty: all drained)."""
    admin = state["nats_admin"]
    nc = await nats.connect(state["nats"], user=admin["user"], password=admin["password"])
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout_s
        while True:
            behind: dict[str, Any] = {}
            for service in sorted(declaration.services()):
                for context in declaration.consumed_by(service):
                    info = await js.consumer_info(context.stream, service)
                    if info.num_pending or info.num_ack_pending:
                        behind[f"{service}@{context.stream}"] = {
                            "pending": info.num_pending,
                            "ack_pending": info.num_ack_pending,
                            "redelivered": info.num_redelivered,
                        }
            if not behind or time.monotonic() > deadline:
                return behind
            await asyncio.sleep(0.5)
    finally:
        await nc.close()
