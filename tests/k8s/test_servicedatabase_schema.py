"""The CRD's schema refuses bad ServiceDatabases at the API server, with a clear message."""

from __future__ import annotations

import pytest

from k8s.apiserver import KubeApiServer
from k8s.resources import apply, apply_refused, service_database

pytestmark = pytest.mark.usefixtures("servicedatabase_crd")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"engine": "mysql"}, 'spec.engine: Unsupported value: "mysql"'),
        ({"mode": "pooled"}, 'spec.mode: Unsupported value: "pooled"'),
        ({"deletionPolicy": "Orphan"}, 'spec.deletionPolicy: Unsupported value: "Orphan"'),
        ({"mode": "shared"}, "mode shared requires spec.sharedServer.adminSecretRef"),
        (
            {
                "engine": "mongodb",
                "mode": "shared",
                "sharedServer": {"adminSecretRef": {"name": "admin"}},
            },
            "mode shared is available for engine postgresql only",
        ),
        ({"service": "Not_A_Label"}, "spec.service: Invalid value"),
        ({"storage": {"size": "lots"}}, "spec.storage.size: Invalid value"),
    ],
)
def test_invalid_spec_is_refused(
    kube_apiserver: KubeApiServer, namespace: str, spec: dict[str, object], message: str
) -> None:
    manifest = service_database("bad-db", "order")
    manifest["spec"].update(spec)
    assert message in apply_refused(kube_apiserver, namespace, manifest)


def test_missing_required_fields_are_named(kube_apiserver: KubeApiServer, namespace: str) -> None:
    manifest = service_database("bad-db", "order")
    del manifest["spec"]["engine"], manifest["spec"]["version"]
    error = apply_refused(kube_apiserver, namespace, manifest)
    assert "spec.engine: Required value" in error
    assert "spec.version: Required value" in error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"engine": "mongodb"}, "engine is immutable"),
        ({"service": "payment"}, "service is immutable"),
        ({"storage": {"size": "512Mi"}}, "storage.size may grow but not shrink"),
    ],
)
def test_immutable_fields_and_shrinking_storage_are_refused(
    kube_apiserver: KubeApiServer, namespace: str, change: dict[str, object], message: str
) -> None:
    apply(kube_apiserver, namespace, service_database("fixed-db", "order"))
    manifest = service_database("fixed-db", "order")
    manifest["spec"].update(change)
    assert message in apply_refused(kube_apiserver, namespace, manifest)


def test_defaults_are_filled_in_by_the_schema(
    kube_apiserver: KubeApiServer, namespace: str
) -> None:
    apply(kube_apiserver, namespace, service_database("plain-db", "order"))
    spec = kube_apiserver.kubectl(
        "get", "sdb", "plain-db", "-n", namespace, "-o", "jsonpath={.spec}"
    ).stdout
    assert '"mode":"dedicated"' in spec
    assert '"deletionPolicy":"Retain"' in spec
    assert '"size":"1Gi"' in spec
