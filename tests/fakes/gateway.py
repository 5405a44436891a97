"""The services the gateway asks, scripted: per (service, path) a reply, an exception, or a
delay then a reply."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from gateway.ports import Upstream, UpstreamReply, UpstreamUnavailableError


class ScriptedUpstream:
    timeout_s = 1.0

    def __init__(self, script: Mapping[tuple[str, str], Any], delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.asked: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str, str, Any]] = []  # (method, service, path, json)

    async def get(
        self,
        service: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamReply:
        self.asked.append((service, path))
        if service != "order":
            await asyncio.sleep(self.delay_s)
        answer = self.script.get((service, path), UpstreamUnavailableError(service, "refused"))
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return UpstreamReply(answer, b'{"title": "x"}', "application/problem+json", None)
        return UpstreamReply(200, msgspec.json.encode(answer), "application/json", None)

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> UpstreamReply:
        if method == "GET":
            return await self.get(service, path, params, timeout_s=timeout_s)
        self.sent.append((method, service, path, json))
        return UpstreamReply(202, b"{}", "application/json", None)


# Checked by mypy: the scripted services are an Upstream.
_conforms: Callable[[Mapping[tuple[str, str], Any]], Upstream] = ScriptedUpstream
