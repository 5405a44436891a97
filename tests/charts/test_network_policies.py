"""The services' NetworkPolicies and auth wiring, as the real helm renders them. The policies
are evaluated here with Kubernetes' own rules (a pod selected by a policy admits only what
some rule admits: peers are ORed, a podSelector without a namespaceSelector means the
policy's namespace), so the test states who can reach whom, not what the YAML looks like."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chart_tools import APP_CHART, SERVICES, by_name, env_of, of_kind, pod_spec, render

NAMESPACE = {"kubernetes.io/metadata.name": "polysaga"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
ELSEWHERE = {"kubernetes.io/metadata.name": "shop-frontend"}
COMPOSED = {"order", "user", "catalog", "order-view"}  # what the gateway calls
TOOLING = {"polysaga.io/operator-tooling": "true"}
HTTP = 8000


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unexpected selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_admits(peer: Mapping[str, Any], pod: Mapping[str, str], ns: Mapping[str, str]) -> bool:
    assert "ipBlock" not in peer
    if "namespaceSelector" in peer:
        in_namespace = _matches(peer["namespaceSelector"], ns)
    else:
        in_namespace = ns == NAMESPACE  # the policy's own namespace
    return in_namespace and _matches(peer.get("podSelector", {}), pod)


def _port_matches(rule: Mapping[str, Any], target: Mapping[str, Any], port: int) -> bool:
    if "ports" not in rule:
        return True
    names = {p["name"]: p["containerPort"] for p in target["ports"]}
    for entry in rule["ports"]:
        assert entry.get("protocol", "TCP") == "TCP"
        if names.get(entry["port"], entry["port"]) == port:
            return True
    return False


def admits(
    docs: list[dict[str, Any]],
    target: str,
    pod: Mapping[str, str],
    namespace: Mapping[str, str] = NAMESPACE,
    port: int = HTTP,
) -> bool:
    """Would traffic from ``pod`` (in ``namespace``) reach ``target``'s pods on ``port``?"""
    deployment = by_name(docs, "Deployment", f"polysaga-{target}")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod_spec(deployment)["containers"]
    selecting = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if _matches(p["spec"]["podSelector"], labels) and "Ingress" in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True  # no policy selects the pod: everything is admitted
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if _port_matches(rule, container, port) and (
                peers is None or any(_peer_admits(p, pod, namespace) for p in peers)
            ):
                return True
    return False


def pod_of(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/instance": "polysaga"}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(APP_CHART)


def test_every_service_has_one_policy_selecting_exactly_its_own_pods(
    docs: list[dict[str, Any]],
) -> None:
    policies = of_kind(docs, "NetworkPolicy")
    assert sorted(p["metadata"]["name"] for p in policies) == sorted(
        f"polysaga-{s}" for s in SERVICES
    )
    for service in SERVICES:
        chosen = [p for p in policies if _matches(p["spec"]["podSelector"], pod_of(service))]
        assert [p["metadata"]["name"] for p in chosen] == [f"polysaga-{service}"]
        assert chosen[0]["spec"]["policyTypes"] == ["Ingress"]
        assert chosen[0]["metadata"]["labels"]["app.kubernetes.io/name"] == service


@pytest.mark.parametrize("service", sorted(set(SERVICES) - {"gateway"}))
def test_a_service_admits_the_gateway_only_if_composed_and_its_namespace_s_tooling(
    docs: list[dict[str, Any]], service: str
) -> None:
    assert admits(docs, service, pod_of("gateway")) is (service in COMPOSED)
    assert admits(docs, service, TOOLING)
    assert admits(docs, service, {**pod_of("notification"), **TOOLING})
    # Nobody else: not another service, not an unlabelled pod, not tooling elsewhere.
    for other in set(SERVICES) - {"gateway", service}:
        assert not admits(docs, service, pod_of(other)), other
    assert not admits(docs, service, {})
    assert not admits(docs, service, {"polysaga.io/operator-tooling": "yes"})
    assert not admits(docs, service, TOOLING, ELSEWHERE)
    assert not admits(docs, service, pod_of("gateway"), ELSEWHERE)
    # Prometheus's namespace, to scrape /metrics (on the one HTTP port).
    assert admits(docs, service, {"app": "prometheus"}, MONITORING)
    # And only the HTTP port.
    assert not admits(docs, service, TOOLING, port=9999)


def test_the_gateway_is_the_edge_and_admits_everyone_on_its_http_port(
    docs: list[dict[str, Any]],
) -> None:
    assert admits(docs, "gateway", {}, ELSEWHERE)
    assert admits(docs, "gateway", {"anything": "x"})
    assert not admits(docs, "gateway", {}, ELSEWHERE, port=9999)


def test_the_gateway_can_be_closed_to_all_but_the_ingress_controller() -> None:
    ingress = {"kubernetes.io/metadata.name": "ingress-nginx"}
    docs = render(
        APP_CHART,
        values={
            "networkPolicy.gatewayIngressFrom[0].namespaceSelector.matchLabels"
            ".kubernetes\\.io/metadata\\.name": "ingress-nginx"
        },
    )
    assert admits(docs, "gateway", {"app": "controller"}, ingress)
    assert admits(docs, "gateway", TOOLING)
    assert not admits(docs, "gateway", {}, ELSEWHERE)


def test_policies_can_be_turned_off_and_the_tooling_label_chosen() -> None:
    assert (
        of_kind(render(APP_CHART, values={"networkPolicy.enabled": False}), "NetworkPolicy") == []
    )
    docs = render(APP_CHART, values={"networkPolicy.toolingLabel": "example.com/ops"})
    assert admits(docs, "payment", {"example.com/ops": "true"})
    assert not admits(docs, "payment", TOOLING)


def test_every_service_gets_the_operator_token_from_one_generated_secret(
    docs: list[dict[str, Any]],
) -> None:
    secret = by_name(docs, "Secret", "polysaga-operator-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 40
    for service in SERVICES:
        (container,) = pod_spec(by_name(docs, "Deployment", f"polysaga-{service}"))["containers"]
        ref = env_of(container)["POLYSAGA_OPERATOR_TOKEN"]["secretKeyRef"]
        assert ref == {"name": "polysaga-operator-token", "key": "token"}
    # The token is never in plain text anywhere else.
    rendered = json.dumps([d for d in docs if d is not secret])
    assert token not in rendered


def test_an_existing_operator_token_secret_is_used_and_none_is_rendered() -> None:
    docs = render(
        APP_CHART,
        values={
            "auth.operatorToken.create": False,
            "auth.operatorToken.existingSecret": "ops-token",
            "auth.operatorToken.key": "value",
        },
    )
    assert not [s for s in of_kind(docs, "Secret") if "operator-token" in s["metadata"]["name"]]
    (container,) = pod_spec(by_name(docs, "Deployment", "polysaga-order"))["containers"]
    assert env_of(container)["POLYSAGA_OPERATOR_TOKEN"]["secretKeyRef"] == {
        "name": "ops-token",
        "key": "value",
    }


def _gateway(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = pod_spec(by_name(docs, "Deployment", "polysaga-gateway"))
    (container,) = spec["containers"]
    return spec, container


def test_the_gateway_verifies_tokens_against_an_issuer_s_jwks_url() -> None:
    url = "https://idp.example.com/realms/shop/protocol/openid-connect/certs"
    docs = render(
        APP_CHART,
        values={
            "auth.jwt.jwksUrl": url,
            "auth.jwt.issuer": "https://idp.example.com/realms/shop",
            "auth.jwt.rolesClaim": "realm_access.roles",
        },
    )
    spec, container = _gateway(docs)
    env = env_of(container)
    assert env["POLYSAGA_JWKS_URL"] == url and "POLYSAGA_JWKS_FILE" not in env
    assert env["POLYSAGA_JWT_ISSUER"] == "https://idp.example.com/realms/shop"
    assert env["POLYSAGA_JWT_AUDIENCE"] == "polysaga"
    assert env["POLYSAGA_JWT_ROLES_CLAIM"] == "realm_access.roles"
    assert env["POLYSAGA_JWT_OPERATOR_ROLE"] == "operator"
    assert "jwks" not in {v["name"] for v in spec["volumes"]}
    (other,) = pod_spec(by_name(docs, "Deployment", "polysaga-order"))["containers"]
    assert "POLYSAGA_JWT_ISSUER" not in env_of(other)


def test_a_jwks_document_is_mounted_into_the_gateway(tmp_path: Path) -> None:
    jwks = json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k"}]})
    values = tmp_path / "jwks-values.yaml"
    values.write_text(json.dumps({"auth": {"jwt": {"jwks": jwks}}}))  # JSON is YAML
    docs = render(APP_CHART, values_files=[values])
    config = by_name(docs, "ConfigMap", "polysaga-jwks")
    assert json.loads(config["data"]["jwks.json"]) == json.loads(jwks)
    spec, container = _gateway(docs)
    assert env_of(container)["POLYSAGA_JWKS_FILE"] == "/etc/polysaga/jwks/jwks.json"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["jwks"]["mountPath"] == "/etc/polysaga/jwks" and mounts["jwks"]["readOnly"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["jwks"]["configMap"]["name"] == "polysaga-jwks"
