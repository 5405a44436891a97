"""The OpenAPI security schemes of every service: the operator token (internal writes,
``/admin``) and bearer JWTs from the identity provider (the gateway)."""

from __future__ import annotations

from litestar.openapi.spec import Reference, SecurityScheme

OPERATOR_TOKEN_SCHEME = "operatorToken"
BEARER_JWT_SCHEME = "bearerJwt"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    OPERATOR_TOKEN_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description="The operator token (POLYSAGA_OPERATOR_TOKEN; `polysaga up` writes it"
        " to the state file as auth.operator_token)",
    ),
    BEARER_JWT_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A JWT from the identity provider: `sub` is the user; the operator role"
        " reads everything",
    ),
}
