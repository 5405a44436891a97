"""Pure builders of the children a ServiceDatabase owns: the credentials Secret, the
StatefulSet and headless Service of a dedicated database, and its NetworkPolicy. No I/O:
unit tests check them without a cluster; the handlers apply them server-side."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from polysaga_operator.engines import (
    FERRETDB_BACKEND_PORT,
    PROFILES,
    EngineImages,
    connection_uri,
    container_env,
    ferretdb_env,
    probes,
)
from polysaga_operator.spec import DatabaseSpec, DeletionPolicy, Engine

MANAGED_BY = "polysaga-operator"
DATA_VOLUME = "data"


@dataclass(frozen=True)
class Target:
    """One ServiceDatabase: its children share its name and namespace."""

    name: str
    namespace: str
    spec: DatabaseSpec

    @property
    def secret_name(self) -> str:
        return f"{self.name}-credentials"

    @property
    def host(self) -> str:
        """The headless Service's DNS name (dedicated mode)."""
        return f"{self.name}.{self.namespace}.svc"

    @property
    def port(self) -> int:
        return PROFILES[self.spec.engine].port

    @property
    def user(self) -> str:
        return self.spec.service.replace("-", "_")

    @property
    def database(self) -> str:
        return self.spec.service.replace("-", "_")


@dataclass(frozen=True)
class OperatorIdentity:
    """Where the operator's own pods run, so the NetworkPolicy can let them in."""

    namespace: str
    pod_labels: dict[str, str]


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    host: str
    port: int
    database: str


def selector_labels(target: Target) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": target.spec.engine.value,
        "app.kubernetes.io/instance": target.name,
    }


def labels(target: Target) -> dict[str, str]:
    return {
        **selector_labels(target),
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/part-of": "polysaga",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "polysaga.io/service": target.spec.service,
    }


def _metadata(target: Target, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": target.namespace, "labels": labels(target)}


def credentials_secret(target: Target, credentials: Credentials) -> dict[str, Any]:
    """What the service mounts: its connection URI under the environment variable name its
    settings read, plus the parts for other tools."""
    uri = connection_uri(
        target.spec.engine,
        user=credentials.user,
        password=credentials.password,
        host=credentials.host,
        port=credentials.port,
        database=credentials.database,
    )
    values = {
        PROFILES[target.spec.engine].uri_key: uri,
        "username": credentials.user,
        "password": credentials.password,
        "host": credentials.host,
        "port": str(credentials.port),
        "database": credentials.database,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(target, target.secret_name),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def headless_service(target: Target) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(target, target.name),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(target),
            "ports": [{"name": "db", "port": target.port, "targetPort": "db", "protocol": "TCP"}],
            # Clients learn the address before readiness only to be refused; wait for ready.
            "publishNotReadyAddresses": False,
        },
    }


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _resources() -> dict[str, Any]:
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


def _containers(
    target: Target, images: EngineImages, mounts: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The engine's server; for ferretdb, its PostgreSQL (holding the data volume) and
    FerretDB (the port clients reach) side by side."""
    spec = target.spec
    profile = PROFILES[spec.engine]
    server_env = container_env(spec.engine, target.secret_name, target.user, target.database)
    if spec.engine is not Engine.FERRETDB:
        return [
            {
                "name": spec.engine.value,
                "image": images.ref(spec.engine, spec.version),
                "ports": [{"name": "db", "containerPort": profile.port, "protocol": "TCP"}],
                "env": server_env,
                **probes(spec.engine, target.user, target.database),
                "resources": _resources(),
                "securityContext": _security_context(),
                "volumeMounts": mounts,
            }
        ]
    state = [m for m in mounts if m["mountPath"] == "/state"]
    return [
        {
            "name": "postgresql",
            "image": images.ferretdb_backend(),
            "ports": [
                {"name": "backend", "containerPort": FERRETDB_BACKEND_PORT, "protocol": "TCP"}
            ],
            "env": server_env,
            **probes(Engine.POSTGRESQL, target.user, target.database),
            "resources": _resources(),
            "securityContext": _security_context(),
            "volumeMounts": [m for m in mounts if m["mountPath"] != "/state"],
        },
        {
            "name": "ferretdb",
            "image": images.ref(Engine.FERRETDB, spec.version),
            "ports": [{"name": "db", "containerPort": profile.port, "protocol": "TCP"}],
            "env": ferretdb_env(target.database),
            **probes(Engine.FERRETDB, target.user, target.database),
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "512Mi"},
            },
            "securityContext": _security_context(),
            "volumeMounts": state,
        },
    ]


def statefulset(target: Target, images: EngineImages | None = None) -> dict[str, Any]:
    spec = target.spec
    profile = PROFILES[spec.engine]
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.storage.size}},
    }
    if spec.storage.storage_class_name is not None:
        claim_spec["storageClassName"] = spec.storage.storage_class_name
    scratch_volumes = [f"scratch-{index}" for index in range(len(profile.scratch_paths))]
    mounts = [
        {"name": DATA_VOLUME, "mountPath": profile.data_path},
        *(
            {"name": volume, "mountPath": path}
            for volume, path in zip(scratch_volumes, profile.scratch_paths, strict=True)
        ),
    ]
    containers = _containers(target, images or EngineImages(), mounts)
    # Retain keeps the volumes when the StatefulSet goes; Delete lets Kubernetes remove them.
    when_deleted = "Delete" if spec.deletion_policy is DeletionPolicy.DELETE else "Retain"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(target, target.name),
        "spec": {
            "serviceName": target.name,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(target)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": when_deleted,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels(target)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": profile.uid,
                        "runAsGroup": profile.uid,
                        "fsGroup": profile.uid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": containers,
                    "volumes": [{"name": volume, "emptyDir": {}} for volume in scratch_volumes],
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": DATA_VOLUME, "labels": labels(target)},
                    "spec": claim_spec,
                }
            ],
        },
    }


def network_policy(target: Target, operator: OperatorIdentity) -> dict[str, Any]:
    """Only the owning service's pods, and the operator's, reach the database port."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(target, target.name),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(target)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": target.spec.service}
                            }
                        },
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": operator.namespace}
                            },
                            "podSelector": {"matchLabels": dict(operator.pod_labels)},
                        },
                    ],
                    "ports": [{"protocol": "TCP", "port": target.port}],
                }
            ],
        },
    }


def claim_size(statefulset_body: dict[str, Any]) -> str | None:
    """The volume size a live StatefulSet's claim template asks for."""
    templates = statefulset_body.get("spec", {}).get("volumeClaimTemplates") or []
    for template in templates:
        if template.get("metadata", {}).get("name") == DATA_VOLUME:
            size = template.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
            return str(size) if size is not None else None
    return None
