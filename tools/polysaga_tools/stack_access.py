"""An HTTP client authorised for a running stack, from its state file: the operator token
for the internal services, an operator JWT (signed by the stack's local key) for the
gateway, and nothing for any other address (Prometheus, Jaeger, anything else). Its reads
survive a dropped connection (a restarted pod behind a port-forward, a restarted process)."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from polysaga_tools.local_identity import OPERATOR_ROLE, LocalIdentity

OPERATOR_SUBJECT = "polysaga-operator"
EDGE = "gateway"
# Long enough for the longest bench or chaos run; the key itself lives only as long as the stack.
OPERATOR_JWT_TTL_S = 24 * 3600


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _urls(state: Mapping[str, Any], service: str) -> list[str]:
    instances = state.get("instances", {}).get(service)
    return list(instances) if instances else [state["services"][service]]


class StackAuth(httpx.Auth):
    def __init__(self, state: Mapping[str, Any]) -> None:
        auth = state.get("auth") or {}
        self._operator_token: str | None = auth.get("operator_token")
        self._edge_token: str | None = None
        if auth.get("signing_key"):
            identity = LocalIdentity.from_state(auth)
            self._edge_token = identity.token(
                OPERATOR_SUBJECT, [OPERATOR_ROLE], ttl_s=OPERATOR_JWT_TTL_S
            )
        services = state["services"]
        self._edge = {_origin(u) for u in _urls(state, EDGE)} if EDGE in services else set()
        self._internal = {
            _origin(u) for s in state["services"] if s != EDGE for u in _urls(state, s)
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        origin = (request.url.scheme, request.url.netloc.decode())
        token = (
            self._edge_token
            if origin in self._edge
            else self._operator_token
            if origin in self._internal
            else None
        )
        if token is not None and "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


_READS = frozenset({"GET", "HEAD"})
READ_ATTEMPTS = 5


class ReadRetries(httpx.AsyncBaseTransport):
    """Sends a read again, a few times with growing pauses (about 3 s in all), when it could
    not be carried (connection refused or reset, a timeout): a read changes nothing, so
    asking again is safe. Writes and every answer the server gave, 5xx included, are passed
    on as they are, for the caller to judge."""

    def __init__(self, inner: httpx.AsyncBaseTransport, attempts: int = READ_ATTEMPTS) -> None:
        self._inner, self._attempts = inner, attempts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in _READS:
            return await self._inner.handle_async_request(request)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(httpx.TransportError),
            reraise=True,
        ):
            with attempt:
                return await self._inner.handle_async_request(request)
        raise AssertionError("tenacity either returns or re-raises")  # pragma: no cover

    async def aclose(self) -> None:
        await self._inner.aclose()


def stack_client(state: Mapping[str, Any], **kwargs: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kwargs)`` that authorises itself to the stack's services and
    retries reads that could not be carried (``ReadRetries``)."""
    limits = kwargs.pop("limits", httpx.Limits(max_connections=100, max_keepalive_connections=20))
    inner = httpx.AsyncHTTPTransport(limits=limits)  # httpx's own default limits, unless given
    return httpx.AsyncClient(auth=StackAuth(state), transport=ReadRetries(inner), **kwargs)


def operator_headers(state: Mapping[str, Any]) -> dict[str, str]:
    """The header that opens the internal services' operator routes."""
    token = (state.get("auth") or {}).get("operator_token")
    return {"Authorization": f"Bearer {token}"} if token else {}
