"""What the gateway's application needs, as the service owns it: a way to ask the services
it composes, where any status is a reply and only failing to get one is an error.
``gateway.adapters`` implements it over HTTP (httpx, timeouts, circuit breakers), the unit
tests with scripted answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec


class UpstreamUnavailableError(Exception):
    """The service could not be asked: not configured, refused, reset, or too slow."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


@dataclass(frozen=True)
class UpstreamReply:
    status: int
    content: bytes
    content_type: str
    retry_after: str | None

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is anything else."""
        try:
            body = msgspec.json.decode(self.content)
        except msgspec.DecodeError:
            return None
        return body if isinstance(body, dict) else None


class Upstream(Protocol):
    async def get(
        self,
        service: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamReply:
        """GET ``path`` (already percent-encoded) from ``service``."""
        ...

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
    ) -> UpstreamReply: ...
