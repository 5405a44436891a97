"""The local stack's identity provider: its tokens verify against its JWKS exactly as the
gateway verifies an OIDC issuer's (and not against another stack's), its key id is the
RFC 7638 thumbprint, a state file's auth section restores it, and its chart values carry
the public keys only."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from polysaga.auth import BearerVerifier
from polysaga.problems import Problem
from polysaga.settings import ServiceSettings
from polysaga_tools.local_identity import LocalIdentity


def verifier_for(identity: LocalIdentity, tmp_path: Path) -> BearerVerifier:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(identity.jwks()))
    return BearerVerifier(
        ServiceSettings(jwks_file=jwks, jwt_issuer=identity.issuer, jwt_audience=identity.audience)
    )


async def test_its_tokens_verify_against_its_own_jwks_only(tmp_path: Path) -> None:
    identity = LocalIdentity.new()
    principal = await verifier_for(identity, tmp_path).verify(
        identity.token("user-1", ["operator"])
    )
    assert (principal.user_id, principal.operator) == ("user-1", True)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    another_stack = verifier_for(LocalIdentity.new(), other_dir)
    with pytest.raises(Problem) as refused:
        await another_stack.verify(identity.token("user-1"))
    assert refused.value.status_code == 401


def test_the_key_id_is_the_rfc_7638_thumbprint() -> None:
    (jwk,) = LocalIdentity.new().jwks()["keys"]
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(required, separators=(",", ":")).encode()).digest()
    assert jwk["kid"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert (jwk["alg"], jwk["use"]) == ("ES256", "sig") and "d" not in jwk


def test_the_state_file_section_restores_it_and_the_chart_gets_public_keys_only() -> None:
    identity = LocalIdentity.new()
    state = identity.state()
    assert LocalIdentity.from_state(state) == identity
    values = identity.chart_values()["auth"]["jwt"]
    assert json.loads(values["jwks"]) == identity.jwks()
    assert "PRIVATE" not in json.dumps(values) and identity.operator_token not in json.dumps(values)
    assert (values["issuer"], values["audience"]) == (identity.issuer, identity.audience)
