"""Reading and writing objects on the test API server, as the admin."""

from __future__ import annotations

from typing import Any

import yaml

from k8s.apiserver import KubeApiServer

SDB_API = "/apis/polysaga.io/v1alpha1"

# kind -> URL prefix (before /namespaces/...) and plural.
PATHS = {
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "ServiceDatabase": (SDB_API, "servicedatabases"),
}
CHILD_KINDS = ("Secret", "Service", "StatefulSet", "NetworkPolicy")


def url(kind: str, namespace: str, name: str) -> str:
    prefix, plural = PATHS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


def get(api: KubeApiServer, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    with api.client() as client:
        response = client.get(url(kind, namespace, name))
    if response.status_code == 404:
        return None
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def service_database(
    name: str, service: str, engine: str = "postgresql", version: str = "16", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "polysaga.io/v1alpha1",
        "kind": "ServiceDatabase",
        "metadata": {"name": name},
        "spec": {"service": service, "engine": engine, "version": version, **spec},
    }


def apply(api: KubeApiServer, namespace: str, manifest: dict[str, Any]) -> None:
    api.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def apply_refused(api: KubeApiServer, namespace: str, manifest: dict[str, Any]) -> str:
    """kubectl's error for a manifest the API server must refuse."""
    done = api.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False
    )
    assert done.returncode != 0, f"accepted: {manifest}"
    return done.stderr
