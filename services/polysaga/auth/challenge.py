"""The answers to a request without the right credentials (RFC 6750 over RFC 9457): 401
with a ``WWW-Authenticate: Bearer`` challenge when credentials are missing or bad, 403 when
they are good but do not allow the request."""

from __future__ import annotations

import re
from collections.abc import Mapping

from polysaga.problems import Problem

REALM = "polysaga"
# RFC 6750 §3: error_description is printable ASCII without '"' and '\'.
_NOT_ALLOWED_IN_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> Problem:
    """401. ``error=None`` when the request carried no bearer credentials at all (RFC 6750
    §3.1: then the challenge names no error)."""
    challenge = f'Bearer realm="{REALM}"'
    if error is not None:
        description = _NOT_ALLOWED_IN_DESCRIPTION.sub("?", detail)
        challenge += f', error="{error}", error_description="{description}"'
    return Problem(
        401, "Unauthorized", detail, slug="unauthorized", headers={"WWW-Authenticate": challenge}
    )


def forbidden(detail: str) -> Problem:
    return Problem(
        403,
        "Forbidden",
        detail,
        slug="forbidden",
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
    )


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is none or
    it is another scheme. A Bearer header that is not a token is refused outright."""
    value = headers.get("authorization")
    if value is None or not value[:7].lower().startswith("bearer"):
        return None
    match = _BEARER.match(value)
    if match is None:
        raise unauthorized("the Authorization header is not 'Bearer <token>'")
    return match.group(1)
