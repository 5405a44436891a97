"""The test control plane itself: reachable, authenticated, RBAC-enforcing."""

from __future__ import annotations

from k8s.apiserver import KubeApiServer


def test_admin_reaches_the_api_through_the_kubeconfig(kube_apiserver: KubeApiServer) -> None:
    namespaces = kube_apiserver.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/default" in namespaces
    assert "namespace/kube-system" in namespaces


def test_anonymous_and_unknown_tokens_are_refused(kube_apiserver: KubeApiServer) -> None:
    with kube_apiserver.client(token="not-a-token") as client:
        assert client.get("/api/v1/namespaces").status_code == 401


def test_rbac_denies_an_authenticated_user_without_bindings(
    kube_apiserver: KubeApiServer,
) -> None:
    with kube_apiserver.client() as admin:
        created = admin.post(
            "/api/v1/namespaces/default/serviceaccounts",
            json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
        )
        assert created.status_code in (201, 409), created.text
        token = admin.post(
            "/api/v1/namespaces/default/serviceaccounts/nobody/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        assert token.status_code == 201, token.text
    with kube_apiserver.client(token=token.json()["status"]["token"]) as nobody:
        denied = nobody.get("/api/v1/namespaces/default/secrets")
    assert denied.status_code == 403
    assert "system:serviceaccount:default:nobody" in denied.json()["message"]
