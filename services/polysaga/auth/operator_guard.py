"""The operator token: internal writes that seed or correct data (stock, accounts, prices,
the catalog) and every ``/admin`` route need ``Authorization: Bearer <operator token>``.
The token comes from a Secret or the setting ``POLYSAGA_OPERATOR_TOKEN``; a service without
one refuses every such request (closed by default)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from pydantic import SecretStr

from polysaga.auth.challenge import bearer_token, unauthorized

ADMIN_PREFIX = "/admin"


class OperatorCredential:
    """What one service accepts as the operator token."""

    def __init__(self, token: SecretStr | None) -> None:
        self._expected = token.get_secret_value().encode() if token is not None else None

    @property
    def configured(self) -> bool:
        return self._expected is not None

    def check(self, headers: Mapping[str, str]) -> None:
        given = bearer_token(headers)
        if given is None:
            raise unauthorized(
                "this route needs the operator token (Authorization: Bearer <token>)", error=None
            )
        if self._expected is None:
            raise unauthorized(
                "this service has no operator token configured (POLYSAGA_OPERATOR_TOKEN),"
                " so it refuses every operator request"
            )
        # Constant time: the comparison must not tell how much of a guess was right.
        if not hmac.compare_digest(given.encode(), self._expected):
            raise unauthorized("the operator token is not valid")


def require_operator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A Litestar guard: ``@put(..., guards=[require_operator])``."""
    credential: OperatorCredential = connection.app.state.operator_credential
    credential.check(connection.headers)


def _is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(f"{ADMIN_PREFIX}/")


def admin_routes_need_operator(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """An app-wide guard: every route under ``/admin`` needs the operator token, whether or
    not its author remembered to say so."""
    if require_operator in (handler.guards or ()):
        return  # its own guard checks
    template = str(connection.scope.get("path_template") or connection.scope.get("path", ""))
    if _is_admin_path(template) or any(_is_admin_path(p) for p in getattr(handler, "paths", ())):
        require_operator(connection, handler)


def is_operator_route(handler: BaseRouteHandler) -> bool:
    """For the OpenAPI document: does this route need the operator token?"""
    return require_operator in (handler.guards or ()) or any(
        _is_admin_path(p) for p in getattr(handler, "paths", ())
    )
