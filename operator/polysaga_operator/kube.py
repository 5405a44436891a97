"""The operator's few Kubernetes API calls, through kr8s: server-side apply of children,
get, delete, and a merge patch. API failures become ClusterError with the status code."""

from __future__ import annotations

import json
from typing import Any

import httpx
import kr8s
import kr8s.asyncio

FIELD_MANAGER = "polysaga-operator"

# kind -> (apiVersion, plural) of every kind the operator touches.
_KINDS: dict[str, tuple[str, str]] = {
    "Secret": ("v1", "secrets"),
    "Service": ("v1", "services"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
}


class ClusterError(Exception):
    """A request to the API server failed; ``status`` is the HTTP status (0: unreachable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retriable(self) -> bool:
        return self.status == 0 or self.status == 409 or self.status == 429 or self.status >= 500


class Cluster:
    def __init__(self, api: kr8s.asyncio.Api) -> None:
        self._api = api

    @classmethod
    async def connect(cls) -> Cluster:
        """In a pod: its ServiceAccount; elsewhere: the kubeconfig ($KUBECONFIG)."""
        return cls(await kr8s.asyncio.api())

    async def _call(self, method: str, kind: str, namespace: str, path: str, **kwargs: Any) -> Any:
        version, plural = _KINDS[kind]
        try:
            async with self._api.call_api(
                method, version=version, namespace=namespace, url=f"{plural}/{path}", **kwargs
            ) as response:
                return response.json()
        except kr8s.ServerError as error:
            status = error.response.status_code if error.response is not None else 0
            raise ClusterError(f"{method} {kind} {namespace}/{path}: {error}", status) from error
        except (httpx.TransportError, kr8s.APITimeoutError) as error:
            raise ClusterError(f"{method} {kind} {namespace}/{path}: {error}", 0) from error

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._call("GET", kind, namespace, name)
        except ClusterError as error:
            if error.status == 404:
                return None
            raise
        return found

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: creates the object or brings our fields back to the manifest."""
        metadata = manifest["metadata"]
        applied: dict[str, Any] = await self._call(
            "PATCH",
            manifest["kind"],
            metadata["namespace"],
            metadata["name"],
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
            content=json.dumps(manifest),
        )
        return applied

    async def merge_patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        patched: dict[str, Any] = await self._call(
            "PATCH",
            kind,
            namespace,
            name,
            headers={"Content-Type": "application/merge-patch+json"},
            content=json.dumps(patch),
        )
        return patched

    async def delete(
        self, kind: str, namespace: str, name: str, propagation: str = "Background"
    ) -> bool:
        """Deletes the object; False when it was already gone."""
        try:
            await self._call(
                "DELETE",
                kind,
                namespace,
                name,
                content=json.dumps({"propagationPolicy": propagation}),
            )
        except ClusterError as error:
            if error.status == 404:
                return False
            raise
        return True
