"""The operator's settings from the environment (prefix ``POLYSAGA_OPERATOR_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLYSAGA_OPERATOR_", extra="ignore")

    # Namespaces to watch (a JSON list); empty watches the whole cluster.
    watch_namespaces: list[str] = []
    # How often each ServiceDatabase is reconciled again: recreates children deleted by hand
    # and refreshes the phase as the database pod becomes ready.
    resync_seconds: float = 60.0
    # Prometheus metrics on this port (0 turns them off).
    metrics_port: int = 9090
    # kopf's liveness endpoint, probed by the Deployment.
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    # The namespace and labels of the operator's own pods, which the NetworkPolicies admit.
    namespace: str = "polysaga-system"
    pod_labels: dict[str, str] = {"app.kubernetes.io/name": "polysaga-operator"}
    # The image repository (no tag: the ServiceDatabase's version is the tag) of each engine's
    # server, e.g. a local registry's copy; ferretdb's pod runs images.postgresql too.
    images: dict[str, str] = {}
    # The tag of the PostgreSQL that a ferretdb pod keeps its data in.
    ferretdb_postgresql_version: str = "16"
