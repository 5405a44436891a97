"""The gateway's one adapter: an HTTP client for the services it composes.

One ``httpx.AsyncClient`` per process (a connection pool shared by every request), created
on first use inside the running event loop and closed at shutdown. Every call is bounded
twice: httpx's own connect/read/write/pool timeouts, and an overall deadline around the
whole exchange, because a peer that trickles bytes never trips a per-read timeout. And
every upstream has a circuit breaker: once it has failed (no answer, or a 5xx other than
503, which is an answer: "retry later") several times in a row, calls to it fail at once
instead of each waiting for the timeout, until a probe finds it back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.ports import UpstreamReply, UpstreamUnavailableError
from polysaga.circuit_breaker import CircuitBreaker, CircuitOpenError

log = logging.getLogger(__name__)


class UpstreamClient:
    """The gateway's ``gateway.ports.Upstream`` over HTTP."""

    def __init__(
        self,
        base_urls: Mapping[str, str],
        timeout_s: float,
        *,
        breaker_failure_threshold: int = 5,
        breaker_open_s: float = 5.0,
    ) -> None:
        self._base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self.breakers = {
            name: CircuitBreaker(
                name, failure_threshold=breaker_failure_threshold, open_s=breaker_open_s
            )
            for name in self._base_urls
        }

    async def get(
        self,
        service: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamReply:
        """GET ``path`` (already percent-encoded) from ``service``; any status is a reply,
        only a failure to get one raises UpstreamUnavailableError."""
        return await self.request("GET", service, path, params=params, timeout_s=timeout_s)

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
        base = self._base_urls.get(service)
        if base is None:
            raise UpstreamUnavailableError(service, "no URL configured")
        breaker = self.breakers[service]
        try:
            breaker.before_call()
        except CircuitOpenError as exc:
            raise UpstreamUnavailableError(service, str(exc)) from exc
        deadline_s = timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(deadline_s):
                response = await self._http().request(
                    method,
                    f"{base}{path}",
                    params=dict(params or {}),
                    json=json,
                    headers=dict(headers or {}),
                    timeout=deadline_s,
                )
        except TimeoutError as exc:
            breaker.failed()
            raise UpstreamUnavailableError(service, f"no answer within {deadline_s} s") from exc
        except httpx.HTTPError as exc:
            breaker.failed()
            raise UpstreamUnavailableError(service, f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            breaker.abandoned()  # cancelled: no verdict on the upstream
            raise
        if response.status_code >= 500 and response.status_code != 503:
            breaker.failed()
        else:
            breaker.succeeded()
        return UpstreamReply(
            status=response.status_code,
            content=response.content,
            content_type=response.headers.get("content-type", "application/octet-stream"),
            retry_after=response.headers.get("retry-after"),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
                headers={"accept": "application/json"},
            )
        return self._client
