"""Reading the resources a reconcile depends on, and turning failures into kopf's errors."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import kopf

from polysaga_operator.kube import Cluster, ClusterError
from polysaga_operator.manifests import Target
from polysaga_operator.shared_postgres import AdminConnection, SharedServerError, parse_admin_uri
from polysaga_operator.spec import InvalidSpec, parse_spec

RETRY_DELAY_S = 10.0


def target_of(name: str, namespace: str, spec: Mapping[str, Any]) -> Target:
    try:
        return Target(name=name, namespace=namespace, spec=parse_spec(spec))
    except InvalidSpec as error:
        raise kopf.PermanentError(str(error)) from error


@asynccontextmanager
async def kopf_errors() -> AsyncIterator[None]:
    """API and shared-server failures as kopf's errors: retried with a delay when they may
    pass, permanent otherwise."""
    try:
        yield
    except ClusterError as error:
        if error.retriable:
            raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S) from error
        raise kopf.PermanentError(str(error)) from error
    except SharedServerError as error:
        if error.permanent:
            raise kopf.PermanentError(str(error)) from error
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S * 3) from error


def secret_value(secret: Mapping[str, Any], key: str) -> str | None:
    encoded = (secret.get("data") or {}).get(key)
    return base64.b64decode(encoded).decode() if encoded is not None else None


async def password_for(cluster: Cluster, target: Target) -> str:
    """The password already in the credentials Secret (kept across reconciles, and across a
    re-created resource after Retain), else a new one."""
    existing = await cluster.get("Secret", target.namespace, target.secret_name)
    password = secret_value(existing, "password") if existing is not None else None
    return password or secrets.token_urlsafe(24)


async def admin_connection(cluster: Cluster, target: Target) -> AdminConnection:
    ref = target.spec.shared_server.admin_secret_ref if target.spec.shared_server else None
    if ref is None:
        raise kopf.PermanentError("mode shared requires spec.sharedServer.adminSecretRef")
    secret = await cluster.get("Secret", target.namespace, ref.name)
    if secret is None:
        # It may simply not be created yet.
        raise kopf.TemporaryError(
            f"the admin Secret {target.namespace}/{ref.name} does not exist",
            delay=RETRY_DELAY_S * 3,
        )
    uri = secret_value(secret, ref.key)
    if uri is None:
        raise kopf.PermanentError(f"the admin Secret {ref.name} has no key {ref.key!r}")
    try:
        return parse_admin_uri(uri)
    except SharedServerError as error:
        raise kopf.PermanentError(f"admin Secret {ref.name}: {error}") from error
