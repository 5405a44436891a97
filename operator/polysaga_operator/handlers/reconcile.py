"""Create, update, resume and resync: bring a ServiceDatabase's children to its spec and
report what is true about the database in its status."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from polysaga_operator import manifests, shared_postgres
from polysaga_operator.context import OperatorContext
from polysaga_operator.handlers.common import (
    admin_connection,
    kopf_errors,
    password_for,
    target_of,
)
from polysaga_operator.kube import Cluster
from polysaga_operator.manifests import Credentials, Target
from polysaga_operator.spec import Mode, sql_name
from polysaga_operator.status import Outcome, Phase, statefulset_outcome, status_fields

# How long a storage change waits for the old StatefulSet to be gone before retrying later.
_REPLACE_WAIT_S = 10.0


async def reconcile(
    *,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    body: kopf.Body,
    meta: kopf.Meta,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    context: OperatorContext,
    logger: kopf.Logger,
) -> None:
    generation = meta.get("generation")
    conditions = status.get("conditions") or []
    try:
        target = target_of(name, namespace, spec)
        async with kopf_errors():
            if target.spec.mode is Mode.SHARED:
                outcome = await _reconcile_shared(context.cluster, target, body)
            else:
                outcome = await _reconcile_dedicated(context, target, body, logger)
    except kopf.PermanentError as error:
        patch.status.update(
            status_fields(
                Outcome(Phase.FAILED, "InvalidConfiguration", str(error)), generation, conditions
            )
        )
        raise
    except kopf.TemporaryError as error:
        patch.status.update(
            status_fields(
                Outcome(Phase.PENDING, "RetryingAfterError", str(error)), generation, conditions
            )
        )
        raise
    patch.status.update(status_fields(outcome, generation, conditions))


def _owned(manifest: dict[str, Any], owner: kopf.Body) -> dict[str, Any]:
    kopf.adopt(manifest, owner=owner)
    return manifest


async def _reconcile_dedicated(
    context: OperatorContext, target: Target, owner: kopf.Body, logger: kopf.Logger
) -> Outcome:
    cluster = context.cluster
    credentials = Credentials(
        user=target.user,
        password=await password_for(cluster, target),
        host=target.host,
        port=target.port,
        database=target.database,
    )
    await cluster.apply(_owned(manifests.credentials_secret(target, credentials), owner))
    await cluster.apply(_owned(manifests.headless_service(target), owner))
    await cluster.apply(_owned(manifests.network_policy(target, context.identity), owner))
    desired = _owned(manifests.statefulset(target, context.images), owner)
    await _replace_if_storage_changed(cluster, target, logger)
    applied = await cluster.apply(desired)
    return statefulset_outcome(applied, f"{target.host}:{target.port}", target.secret_name)


async def _replace_if_storage_changed(
    cluster: Cluster, target: Target, logger: kopf.Logger
) -> None:
    """A StatefulSet's claim template is immutable: grow the existing volumes, then remove
    the StatefulSet without its pods (orphan) so the next apply recreates it with the new
    template and adopts them."""
    current = await cluster.get("StatefulSet", target.namespace, target.name)
    if current is None:
        return
    size = manifests.claim_size(current)
    wanted = target.spec.storage.size
    if size is None or size == wanted:
        return
    logger.info(f"storage {size} -> {wanted}: expanding volumes, replacing the StatefulSet")
    replicas = int(current.get("spec", {}).get("replicas") or 1)
    for ordinal in range(replicas):
        claim = f"{manifests.DATA_VOLUME}-{target.name}-{ordinal}"
        if await cluster.get("PersistentVolumeClaim", target.namespace, claim) is not None:
            await cluster.merge_patch(
                "PersistentVolumeClaim",
                target.namespace,
                claim,
                {"spec": {"resources": {"requests": {"storage": wanted}}}},
            )
    await cluster.delete("StatefulSet", target.namespace, target.name, propagation="Orphan")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _REPLACE_WAIT_S
    while loop.time() < deadline:
        if await cluster.get("StatefulSet", target.namespace, target.name) is None:
            return
        await asyncio.sleep(0.5)
    raise kopf.TemporaryError("waiting for the old StatefulSet to be removed", delay=5)


async def _reconcile_shared(cluster: Cluster, target: Target, owner: kopf.Body) -> Outcome:
    admin = await admin_connection(cluster, target)
    name = sql_name(target.namespace, target.spec.service)
    password = await password_for(cluster, target)
    await shared_postgres.ensure_database(admin, name, password)
    credentials = Credentials(
        user=name, password=password, host=admin.host, port=admin.port, database=name
    )
    await cluster.apply(_owned(manifests.credentials_secret(target, credentials), owner))
    return Outcome(
        Phase.READY,
        "DatabaseReady",
        f"role and database {name} exist on the shared server",
        f"{admin.host}:{admin.port}",
        target.secret_name,
    )
