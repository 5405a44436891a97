"""Bearer JWT verification against a JWKS file: ES256 and RS256 tokens accepted with their
subject and roles; expired, not-yet-valid, foreign-issuer, wrong-audience, unsigned,
tampered, HMAC-forged and unknown-key tokens refused with a 401; a rotated key found by
re-reading the key set, at most once per interval."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from polysaga.auth import BearerVerifier
from polysaga.auth.jwks import JwksCache, UnknownKeyError
from polysaga.problems import Problem
from polysaga.settings import ServiceSettings
from polysaga_tools.local_identity import LocalIdentity

ISSUER, AUDIENCE = "https://idp.example.com/realms/shop", "polysaga"


class Issuer:
    """An identity provider whose JWKS is a file: an ES256 key and an RS256 key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ec = LocalIdentity.new()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.publish(self.ec, self.rsa)

    def publish(self, *keys: Any) -> None:
        jwks = []
        for key in keys:
            if isinstance(key, LocalIdentity):
                jwks.extend(key.jwks()["keys"])
            else:
                jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                jwks.append({**jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"})
        self.path.write_text(json.dumps({"keys": jwks}))

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-7", "exp": now + 300, "iat": now}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def es256(self, **overrides: Any) -> str:
        return self.ec.sign(self.claims(**overrides))

    def rs256(self, **overrides: Any) -> str:
        return jwt.encode(
            self.claims(**overrides), self.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        )


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path / "jwks.json")


def verifier(issuer: Issuer, **settings: Any) -> BearerVerifier:
    return BearerVerifier(
        ServiceSettings(
            jwks_file=issuer.path,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_leeway_s=0,
            **settings,
        )
    )


async def refused(v: BearerVerifier, token: str) -> Problem:
    with pytest.raises(Problem) as caught:
        await v.verify(token)
    assert caught.value.status_code == 401
    assert 'error="invalid_token"' in (caught.value.headers or {})["WWW-Authenticate"]
    return caught.value


async def test_es256_and_rs256_tokens_name_their_subject_and_roles(issuer: Issuer) -> None:
    v = verifier(issuer)
    customer = await v.verify(issuer.es256())
    assert (customer.user_id, customer.roles, customer.operator) == ("user-7", frozenset(), False)
    operator = await v.verify(issuer.rs256(sub="ops-1", roles=["operator", "viewer"]))
    assert operator.operator and operator.roles == {"operator", "viewer"}
    assert operator.may_act_for("someone-else") and not customer.may_act_for("someone-else")


async def test_roles_from_a_nested_claim_or_a_space_separated_string(issuer: Issuer) -> None:
    keycloak = verifier(issuer, jwt_roles_claim="realm_access.roles")
    nested = await keycloak.verify(issuer.es256(realm_access={"roles": ["operator"]}))
    assert nested.operator
    assert not (await keycloak.verify(issuer.es256(roles=["operator"]))).operator
    spaced = await verifier(issuer, jwt_roles_claim="scope").verify(
        issuer.es256(scope="openid operator")
    )
    assert spaced.operator


# Time claims are computed when the test runs, not at collection: a long suite
# otherwise reaches the "future" nbf before this test does.
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (lambda: {"exp": int(time.time()) - 5}, "expired"),
        (lambda: {"nbf": int(time.time()) + 600}, "not valid yet"),
        (lambda: {"iss": "https://evil.example.com"}, "another issuer"),
        (lambda: {"aud": "someone-else"}, "audience"),
        (lambda: {"exp": None}, "'exp'"),
        (lambda: {"sub": None}, "'sub'"),
        (lambda: {"aud": None}, "'aud'"),
    ],
)
async def test_claims_that_do_not_hold_are_refused(
    issuer: Issuer, overrides: Callable[[], dict[str, Any]], reason: str
) -> None:
    problem = await refused(verifier(issuer), issuer.es256(**overrides()))
    assert reason in problem.detail


async def test_forged_tokens_are_refused(issuer: Issuer) -> None:
    v = verifier(issuer)
    good = issuer.es256()
    header, _, signature = good.split(".")
    other = issuer.es256(sub="someone-else").split(".")[1]
    await refused(v, f"{header}.{other}.{signature}")  # payload swapped under a signature
    unsigned = jwt.encode(issuer.claims(), None, algorithm="none")
    await refused(v, unsigned)
    # HS256 "signed" with the published key as the secret: the classic algorithm confusion
    # (made by hand: PyJWT itself refuses to sign with a key that looks like a JWK).
    head = _b64({"alg": "HS256", "typ": "JWT", "kid": issuer.ec.key_id})
    body = _b64(issuer.claims())
    mac = hmac.new(issuer.path.read_bytes(), f"{head}.{body}".encode(), hashlib.sha256)
    await refused(
        v, f"{head}.{body}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"
    )
    # Signed by another key that claims the issuer's key id.
    await refused(v, LocalIdentity.new().sign(issuer.claims(), kid=issuer.ec.key_id))
    await refused(v, "not-a-jwt")


async def test_a_token_with_a_key_of_another_type_than_its_algorithm_is_refused(
    issuer: Issuer,
) -> None:
    token = jwt.encode(
        issuer.claims(), issuer.rsa, algorithm="RS256", headers={"kid": issuer.ec.key_id}
    )
    await refused(verifier(issuer), token)


async def test_only_the_configured_algorithms_are_accepted(issuer: Issuer) -> None:
    problem = await refused(verifier(issuer, jwt_algorithms=["ES256"]), issuer.rs256())
    assert "RS256" in problem.detail


async def test_an_unconfigured_verifier_refuses_everything(issuer: Issuer) -> None:
    v = BearerVerifier(ServiceSettings(jwks_file=issuer.path, jwt_issuer=ISSUER))
    assert not v.configured
    await refused(v, issuer.es256())


async def test_a_rotated_key_is_found_by_rereading_the_key_set(issuer: Issuer) -> None:
    v = verifier(issuer, jwks_min_refresh_interval_s=0)
    assert (await v.verify(issuer.es256())).user_id == "user-7"
    issuer.ec = LocalIdentity.new()  # rotation: the new key is published, the old one gone
    issuer.publish(issuer.ec)
    assert (await v.verify(issuer.es256(sub="after-rotation"))).user_id == "after-rotation"


async def test_unknown_key_ids_reread_the_set_at_most_once_per_interval() -> None:
    loads: list[float] = []
    now = [1000.0]
    keys = LocalIdentity.new().jwks()

    async def load() -> dict[str, Any]:
        loads.append(now[0])
        return keys

    cache = JwksCache(load, max_age_s=300, min_refresh_interval_s=10, clock=lambda: now[0])
    kid = keys["keys"][0]["kid"]
    await cache.key(kid)
    for forged in ("a", "b", "c"):
        with pytest.raises(UnknownKeyError):
            await cache.key(forged)
    assert loads == [1000.0]  # the first look-up loaded; the forged kids within 10 s did not
    now[0] += 10
    with pytest.raises(UnknownKeyError):
        await cache.key("d")
    assert loads == [1000.0, 1010.0]
    now[0] += 300
    await cache.key(kid)  # stale: re-read
    assert loads == [1000.0, 1010.0, 1310.0]


async def test_keys_held_keep_working_when_the_set_cannot_be_reread() -> None:
    now = [0.0]
    keys = LocalIdentity.new().jwks()
    fail = [False]

    async def load() -> dict[str, Any]:
        if fail[0]:
            raise OSError("identity provider unreachable")
        return keys

    cache = JwksCache(load, max_age_s=60, min_refresh_interval_s=1, clock=lambda: now[0])
    kid = keys["keys"][0]["kid"]
    first = await cache.key(kid)
    fail[0] = True
    now[0] += 120
    assert await cache.key(kid) is first
