"""Bearer JWTs at the edge: the signature (RS256 or ES256, the key named by ``kid`` in the
issuer's JWKS), issuer, audience, expiry and not-before are checked; ``sub`` names the
user and a roles claim may make them an operator. Nothing of a refused token is trusted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from litestar import Request
from litestar.di import Provide

from polysaga.auth.challenge import bearer_token, unauthorized
from polysaga.auth.jwks import (
    JwksCache,
    KeysUnavailableError,
    UnknownKeyError,
    file_loader,
    url_loader,
)
from polysaga.auth.principal import Principal
from polysaga.problems import Problem
from polysaga.settings import ServiceSettings

SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})
REQUIRED_CLAIMS = ["exp", "sub", "iss", "aud"]


class BearerVerifier:
    """Verifies tokens against one issuer. Without a key source, issuer and audience it is
    *unconfigured* and refuses every token."""

    def __init__(self, settings: ServiceSettings, http: httpx.AsyncClient | None = None) -> None:
        unsupported = set(settings.jwt_algorithms) - SUPPORTED_ALGORITHMS
        if unsupported:
            raise ValueError(f"unsupported JWT algorithms {sorted(unsupported)}")
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.jwt_roles_claim.split(".")
        self._operator_role = settings.jwt_operator_role
        self._leeway_s = settings.jwt_leeway_s
        self._http = http
        self._owns_http = False
        loader = None
        if settings.jwks_url:
            if self._http is None:
                self._http, self._owns_http = httpx.AsyncClient(timeout=5), True
            loader = url_loader(settings.jwks_url, self._http)
        elif settings.jwks_file:
            loader = file_loader(settings.jwks_file)
        self._keys = (
            JwksCache(
                loader,
                max_age_s=settings.jwks_max_age_s,
                min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
            )
            if loader is not None
            else None
        )

    @property
    def configured(self) -> bool:
        return self._keys is not None and bool(self._issuer) and bool(self._audience)

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        """The principal, or a 401 problem (503 if the issuer's keys cannot be read)."""
        if self._keys is None or not self._issuer or not self._audience:
            raise unauthorized("this service has no token issuer configured; it accepts none")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise unauthorized("the bearer token is not a JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise unauthorized(f"tokens signed with {algorithm!r} are not accepted")
        kid = header.get("kid")
        try:
            key = await self._keys.key(kid if isinstance(kid, str) else None)
        except UnknownKeyError as exc:
            raise unauthorized("the token is signed by a key the issuer does not list") from exc
        except KeysUnavailableError as exc:
            raise Problem(
                503,
                "Token keys unavailable",
                "the issuer's signing keys cannot be read now; try again",
                slug="token-keys-unavailable",
                headers={"Retry-After": "5"},
            ) from exc
        if key.algorithm_name != algorithm:
            raise unauthorized(f"the token's key is not an {algorithm} key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise unauthorized("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise unauthorized("the token is not meant for this audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise unauthorized("the token comes from another issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token lacks the claim {exc.claim!r}") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized("the token's signature or claims are invalid") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise unauthorized("the token's subject is not a string")
        roles = _roles(claims, self._roles_claim)
        return Principal(subject, roles, self._operator_role in roles)

    async def principal(self, headers: Mapping[str, str]) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise unauthorized("this route needs a bearer token", error=None)
        return await self.verify(token)


def _roles(claims: Mapping[str, Any], path: list[str]) -> frozenset[str]:
    value: Any = claims
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def principal_dependency(verifier: BearerVerifier) -> Provide:
    """``principal: Principal`` for a route: the verified caller, or a 401."""

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return await verifier.principal(request.headers)

    return Provide(provide_principal)
