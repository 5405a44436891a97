"""The operator chart's RBAC, applied to the API server: its ServiceAccount may do what the
operator needs (the operator tests run under it) and is refused everything else."""

from __future__ import annotations

import pytest

from k8s.apiserver import KubeApiServer
from k8s.operator_setup import (
    OPERATOR_NAMESPACE,
    OPERATOR_SERVICE_ACCOUNT,
    render_operator_chart,
)

SUBJECT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"

ALLOWED = [
    ("polysaga.io", "servicedatabases", "", "watch"),
    ("polysaga.io", "servicedatabases", "", "list"),
    ("polysaga.io", "servicedatabases", "", "patch"),
    ("polysaga.io", "servicedatabases", "status", "patch"),
    ("", "events", "", "create"),
    ("", "secrets", "", "get"),
    ("", "secrets", "", "create"),
    ("", "secrets", "", "patch"),
    ("", "secrets", "", "delete"),
    ("", "services", "", "patch"),
    ("apps", "statefulsets", "", "patch"),
    ("apps", "statefulsets", "", "delete"),
    ("networking.k8s.io", "networkpolicies", "", "patch"),
    ("", "persistentvolumeclaims", "", "patch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "", "watch"),
]
REFUSED = [
    ("", "secrets", "", "list"),  # it reads the Secrets it names, never all of them
    ("", "secrets", "", "watch"),
    ("", "pods", "", "get"),
    ("", "pods", "", "create"),
    ("", "pods", "exec", "create"),
    ("", "persistentvolumeclaims", "", "delete"),
    ("", "configmaps", "", "get"),
    ("", "namespaces", "", "delete"),
    ("apps", "deployments", "", "create"),
    ("polysaga.io", "servicedatabases", "", "create"),
    ("polysaga.io", "servicedatabases", "", "delete"),
    ("rbac.authorization.k8s.io", "clusterroles", "", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "", "create"),
]


def allowed(api: KubeApiServer, group: str, resource: str, subresource: str, verb: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SUBJECT,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "group": group,
                "resource": resource,
                "subresource": subresource,
                "verb": verb,
                "namespace": "shop",
            },
        },
    }
    with api.client() as admin:
        response = admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
    assert response.status_code == 201, response.text
    return bool(response.json()["status"].get("allowed"))


@pytest.mark.parametrize(("group", "resource", "subresource", "verb"), ALLOWED)
def test_the_operator_may_do_what_it_needs(
    kube_apiserver: KubeApiServer,
    operator_installed: None,
    group: str,
    resource: str,
    subresource: str,
    verb: str,
) -> None:
    assert allowed(kube_apiserver, group, resource, subresource, verb)


@pytest.mark.parametrize(("group", "resource", "subresource", "verb"), REFUSED)
def test_the_operator_is_refused_what_it_does_not_need(
    kube_apiserver: KubeApiServer,
    operator_installed: None,
    group: str,
    resource: str,
    subresource: str,
    verb: str,
) -> None:
    assert not allowed(kube_apiserver, group, resource, subresource, verb)


def test_a_real_request_with_its_token_is_refused_outside_its_rights(
    kube_apiserver: KubeApiServer, operator_token: str
) -> None:
    with kube_apiserver.client(token=operator_token) as operator:
        listing = operator.get("/api/v1/namespaces/default/secrets")
        pods = operator.get("/api/v1/namespaces/default/pods")
        missing = operator.get("/api/v1/namespaces/default/secrets/does-not-exist")
    assert listing.status_code == 403
    assert SUBJECT in listing.json()["message"]
    assert pods.status_code == 403
    assert missing.status_code == 404  # get by name is allowed: the object just is not there


def test_namespaced_mode_grants_roles_only_in_the_watched_namespaces() -> None:
    documents = render_operator_chart("watchNamespaces={shop,billing}")
    kinds = [
        (doc["kind"], doc["metadata"].get("namespace"))
        for doc in documents
        if doc["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    ]
    assert sorted(kinds, key=str) == sorted(
        [
            ("ClusterRole", None),
            ("ClusterRoleBinding", None),
            ("Role", "shop"),
            ("RoleBinding", "shop"),
            ("Role", "billing"),
            ("RoleBinding", "billing"),
        ],
        key=str,
    )
    (cluster_role,) = [doc for doc in documents if doc["kind"] == "ClusterRole"]
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
