"""An HTTP client authorised for a running stack, from its state file: the operator token
for the internal services, an operator JWT (signed by the stack's local key) for the
gateway, and nothing for any other address (Prometheus, Jaeger, anything else)."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

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


def stack_client(state: Mapping[str, Any], **kwargs: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kwargs)`` that authorises itself to the stack's services."""
    return httpx.AsyncClient(auth=StackAuth(state), **kwargs)


def operator_headers(state: Mapping[str, Any]) -> dict[str, str]:
    """The header that opens the internal services' operator routes."""
    token = (state.get("auth") or {}).get("operator_token")
    return {"Authorization": f"Bearer {token}"} if token else {}
