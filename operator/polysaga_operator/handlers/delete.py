"""Deletion, behind the operator's finalizer, as spec.deletionPolicy says.

Retain: the credentials Secret and the data stay. The Secret is released (our owner reference
removed, so no garbage collector takes it); the StatefulSet goes but its volumes stay (its
claim retention policy is Retain), as do a shared role and database. Re-creating the resource
under the same name adopts the Secret again, and with it the password the data expects.
Delete: everything goes — Secret, StatefulSet with its volumes (retention policy Delete),
Service, NetworkPolicy, and on a shared server the database and its role.

Children are deleted explicitly rather than left to the garbage collector, so the outcome is
the same whether or not a controller-manager runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from polysaga_operator import shared_postgres
from polysaga_operator.context import OperatorContext
from polysaga_operator.handlers.common import admin_connection, kopf_errors, target_of
from polysaga_operator.kube import Cluster
from polysaga_operator.manifests import Target
from polysaga_operator.spec import DeletionPolicy, Mode, sql_name


async def finalize(
    *,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    meta: kopf.Meta,
    context: OperatorContext,
    logger: kopf.Logger,
) -> None:
    target = target_of(name, namespace, spec)
    cluster = context.cluster
    retain = target.spec.deletion_policy is DeletionPolicy.RETAIN
    async with kopf_errors():
        for kind in ("NetworkPolicy", "Service", "StatefulSet"):
            await cluster.delete(kind, namespace, name)
        if retain:
            await _release_secret(cluster, target, owner_uid=str(meta.get("uid")))
            logger.info(f"retained Secret {target.secret_name} and the data")
            return
        if target.spec.mode is Mode.SHARED:
            admin = await admin_connection(cluster, target)
            await shared_postgres.drop_database(admin, sql_name(namespace, target.spec.service))
        await cluster.delete("Secret", namespace, target.secret_name)
        logger.info("deleted the database, its data and its Secret")


async def _release_secret(cluster: Cluster, target: Target, owner_uid: str) -> None:
    secret = await cluster.get("Secret", target.namespace, target.secret_name)
    if secret is None:
        return
    references = secret.get("metadata", {}).get("ownerReferences") or []
    await cluster.merge_patch(
        "Secret",
        target.namespace,
        target.secret_name,
        {
            "metadata": {
                "ownerReferences": [r for r in references if r.get("uid") != owner_uid],
                "annotations": {"polysaga.io/retained-from": f"ServiceDatabase/{target.name}"},
            }
        },
    )
