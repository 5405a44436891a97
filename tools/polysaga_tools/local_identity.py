"""The local stack's own identity provider: an ES256 signing key, its JWKS (which the
gateway verifies tokens against, as it would an OIDC issuer's), and the operator token the
internal services accept. Made anew at every ``polysaga up``, kept only in the state file
(mode 0600) and the data directory."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "polysaga-local"
AUDIENCE = "polysaga"
ALGORITHM = "ES256"
OPERATOR_ROLE = "operator"
DEFAULT_TOKEN_TTL_S = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638 thumbprint as the key id: the required members, sorted, no whitespace.
    thumbprint = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode())
    return {**jwk, "kid": _b64url(thumbprint.digest()), "use": "sig", "alg": ALGORITHM}


@dataclass(frozen=True)
class LocalIdentity:
    signing_key_pem: str
    operator_token: str
    issuer: str = ISSUER
    audience: str = AUDIENCE

    @classmethod
    def new(cls) -> LocalIdentity:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls(pem, secrets.token_urlsafe(32))

    @classmethod
    def from_state(cls, auth: Mapping[str, Any]) -> LocalIdentity:
        """From a state file's ``auth`` section."""
        return cls(auth["signing_key"], auth["operator_token"], auth["issuer"], auth["audience"])

    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.signing_key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(self._private_key().public_key())]}

    def token(
        self,
        user_id: str,
        roles: Iterable[str] = (),
        *,
        ttl_s: float = DEFAULT_TOKEN_TTL_S,
        now: float | None = None,
    ) -> str:
        """A signed access token for ``user_id`` (the claims an OIDC provider would put)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl_s),
            "roles": sorted(set(roles)),
        }
        return self.sign(claims)

    @property
    def key_id(self) -> str:
        kid: str = self.jwks()["keys"][0]["kid"]
        return kid

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """Any claims, signed with this key (``kid``: the key id the header names)."""
        headers = {"kid": kid or self.key_id}
        return jwt.encode(dict(claims), self._private_key(), algorithm=ALGORITHM, headers=headers)

    def chart_values(self) -> dict[str, Any]:
        """The polysaga chart's values that make its gateway trust this key (a local cluster:
        ``helm install … --values`` of this as JSON)."""
        return {
            "auth": {
                "jwt": {
                    "jwks": json.dumps(self.jwks()),
                    "issuer": self.issuer,
                    "audience": self.audience,
                }
            }
        }

    def state(self) -> dict[str, Any]:
        """The state file's ``auth`` section."""
        return {
            "operator_token": self.operator_token,
            "issuer": self.issuer,
            "audience": self.audience,
            "signing_key": self.signing_key_pem,
            "jwks": self.jwks(),
        }
