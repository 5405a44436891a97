"""What every handler needs, created once at start-up and handed out through kopf's memo."""

from __future__ import annotations

from dataclasses import dataclass, field

from polysaga_operator.engines import EngineImages
from polysaga_operator.kube import Cluster
from polysaga_operator.manifests import OperatorIdentity


@dataclass(frozen=True)
class OperatorContext:
    cluster: Cluster
    identity: OperatorIdentity
    images: EngineImages = field(default_factory=EngineImages)
