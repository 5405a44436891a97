"""Who may call what: the operator token that guards internal writes and every ``/admin``
route, and bearer JWTs (verified against an issuer's JWKS) that name a customer or an
operator at the edge. Failures are RFC 9457 problems with an RFC 6750 challenge."""

from polysaga.auth.bearer_jwt import BearerVerifier, principal_dependency
from polysaga.auth.challenge import bearer_token, forbidden, unauthorized
from polysaga.auth.operator_guard import (
    OperatorCredential,
    admin_routes_need_operator,
    is_operator_route,
    require_operator,
)
from polysaga.auth.principal import Principal

__all__ = [
    "BearerVerifier",
    "OperatorCredential",
    "Principal",
    "admin_routes_need_operator",
    "bearer_token",
    "forbidden",
    "is_operator_route",
    "principal_dependency",
    "require_operator",
    "unauthorized",
]
