"""kopf's registrations: each decorator delegates to a handler, measured by the metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from prometheus_client import start_http_server

from polysaga_operator.context import OperatorContext
from polysaga_operator.engines import EngineImages
from polysaga_operator.handlers.delete import finalize
from polysaga_operator.handlers.reconcile import reconcile
from polysaga_operator.kube import Cluster
from polysaga_operator.manifests import OperatorIdentity
from polysaga_operator.metrics import observed
from polysaga_operator.settings import OperatorSettings
from polysaga_operator.spec import GROUP, PLURAL, VERSION

SETTINGS = OperatorSettings()
RESOURCE = (GROUP, VERSION, PLURAL)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own names for kopf's bookkeeping; progress in annotations keeps status ours.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO  # INFO and above become Kubernetes events
    settings.watching.server_timeout = 300
    if SETTINGS.metrics_port:
        start_http_server(SETTINGS.metrics_port)
    memo.context = OperatorContext(
        cluster=await Cluster.connect(),
        identity=OperatorIdentity(namespace=SETTINGS.namespace, pod_labels=SETTINGS.pod_labels),
        images=EngineImages(SETTINGS.images, SETTINGS.ferretdb_postgresql_version),
    )


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
@kopf.on.resume(*RESOURCE)
async def on_change(memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
    async with observed(kopf.Reason(reason).value):
        await reconcile(context=memo.context, **_handler_args(kwargs))


@kopf.timer(*RESOURCE, interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds)
async def on_resync(memo: kopf.Memo, **kwargs: Any) -> None:
    async with observed("resync"):
        await reconcile(context=memo.context, **_handler_args(kwargs))


@kopf.on.delete(*RESOURCE)
async def on_delete(memo: kopf.Memo, **kwargs: Any) -> None:
    async with observed("delete"):
        await finalize(
            context=memo.context,
            name=kwargs["name"],
            namespace=kwargs["namespace"],
            spec=kwargs["spec"],
            meta=kwargs["meta"],
            logger=kwargs["logger"],
        )


def _handler_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "namespace", "spec", "body", "meta", "status", "patch", "logger")
    return {key: kwargs[key] for key in keys}
