"""Service settings from the environment (prefix ``POLYSAGA_``), one class for every service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from polysaga import __version__


class ServiceSettings(BaseSettings):
    """What a service process needs to run; each value has a safe local default."""

    model_config = SettingsConfigDict(env_prefix="POLYSAGA_", extra="ignore")

    service_name: str = "unnamed"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Secrets (the URLs carry passwords) print as '**********' in a repr or a log line.
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    db_pool_size: int = 10
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/polysaga")
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    # Copies of each stream JetStream keeps: 1 on a single server, 3 on a cluster (the chart
    # sets it with nats.cluster.enabled), so an acknowledged event survives losing a server.
    stream_replicas: int = Field(default=1, ge=1, le=5)

    # Consumers: a message is tried max_deliveries times, with exponential backoff between
    # tries, then it goes to the dead-letter subject.
    max_deliveries: int = Field(default=5, ge=1)
    redelivery_backoff_s: float = Field(default=0.5, gt=0)
    redelivery_backoff_max_s: float = Field(default=30.0, gt=0)
    ack_wait_s: float = Field(default=30.0, gt=0)
    fetch_batch: int = Field(default=64, ge=1)

    # Outbox relay: woken by LISTEN/NOTIFY, polls anyway in case a notification is missed.
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    relay_batch: int = Field(default=256, ge=1)

    # Pruning. Retention must outlast any redelivery window (JetStream dedup window is 2 min;
    # a redelivered message arrives within max_deliveries * backoff_max).
    outbox_retention_s: float = Field(default=3600.0, gt=0)
    inbox_retention_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Order service: a retry with the same Idempotency-Key later than this places a new order.
    idempotency_key_retention_s: float = Field(default=24 * 3600.0, gt=0)
    prune_interval_s: float = Field(default=60.0, gt=0)

    # Services another one calls over HTTP (the gateway): {"order": "http://…", …}.
    service_urls: dict[str, str] = Field(default_factory=dict)
    dependency_timeout_s: float = Field(default=1.0, gt=0)
    # Read-your-writes: how long a read model waits for a requested version.
    view_wait_max_s: float = Field(default=2.0, gt=0)
    # Outgoing mail (notification service).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    mail_from: str = "orders@polysaga.local"

    # Tracing (OpenTelemetry, OTLP over HTTP). No endpoint: tracing is off, nothing is set up
    # and no span is made. The endpoint is the receiver's base URL (http://127.0.0.1:4318).
    otlp_endpoint: str | None = None
    # Parent-based: a trace that arrives sampled (or not) stays so; new traces use the ratio.
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    deployment_environment: str = "local"
    service_version: str = __version__

    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Logs: JSON lines on stderr. Access logs: the share of requests logged (0 = off).
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    access_log_sample_ratio: float = Field(default=0.0, ge=0, le=1)

    # Internal writes and /admin routes need `Authorization: Bearer <operator_token>` (from a
    # Secret). Unset, they refuse every request: closed by default.
    operator_token: SecretStr | None = None
    # Bearer JWTs (the gateway): keys from a JWKS file or URL (an OIDC issuer's `jwks_uri`),
    # re-read when a token names an unknown key id; issuer and audience must match. Without
    # a key source, issuer and audience, every bearer JWT is refused.
    jwks_file: Path | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    # Where a token lists its roles: a claim name, or a dotted path (Keycloak:
    # "realm_access.roles"); the claim is a list of strings or one space-separated string.
    jwt_roles_claim: str = "roles"
    jwt_operator_role: str = "operator"
    jwt_leeway_s: float = Field(default=30.0, ge=0, le=300)
    jwks_max_age_s: float = Field(default=300.0, gt=0)
    # An unknown key id re-reads the key set at most this often (a stream of forged kids
    # must not become a stream of requests to the identity provider).
    jwks_min_refresh_interval_s: float = Field(default=10.0, ge=0)

    # Gateway: a circuit breaker per upstream opens after this many failures in a row and
    # lets one probe through after the open interval.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=5.0, gt=0)

    # Order service only; harmless elsewhere.
    order_deadline_s: float = Field(default=30.0, gt=0)
    deadline_sweep_interval_s: float = Field(default=1.0, gt=0)
    snapshot_every: int = Field(default=10, ge=1)
