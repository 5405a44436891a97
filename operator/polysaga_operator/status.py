"""The status a ServiceDatabase reports: phase, a Ready condition with reason and message,
observedGeneration, endpoint and secret name. Pure, so the rules are unit-tested."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    reason: str
    message: str
    endpoint: str | None = None
    secret_name: str | None = None


def statefulset_outcome(statefulset: Mapping[str, Any], endpoint: str, secret_name: str) -> Outcome:
    """Ready only when the StatefulSet's controller has seen its current spec and reports
    every replica ready; anything less is Pending, with the counts in the message."""
    spec_replicas = int(statefulset.get("spec", {}).get("replicas", 1))
    status = statefulset.get("status") or {}
    generation = statefulset.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    if observed != generation:
        reason, message = "RolloutPending", "the StatefulSet's controller has not seen its spec"
    elif ready < spec_replicas or updated < spec_replicas:
        reason = "DatabaseNotReady"
        message = f"{ready}/{spec_replicas} database pods ready ({updated} updated)"
    else:
        return Outcome(
            Phase.READY, "DatabaseReady", "the database accepts connections", endpoint, secret_name
        )
    return Outcome(Phase.PENDING, reason, message, endpoint, secret_name)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_fields(
    outcome: Outcome, generation: int | None, conditions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The status to write; the Ready condition's lastTransitionTime moves only when its
    status changes."""
    ready_status = "True" if outcome.phase is Phase.READY else "False"
    previous = next((c for c in conditions if c.get("type") == "Ready"), None)
    since = (
        previous.get("lastTransitionTime")
        if previous is not None and previous.get("status") == ready_status
        else None
    ) or _now()
    ready = {
        "type": "Ready",
        "status": ready_status,
        "reason": outcome.reason,
        "message": outcome.message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
    others = [dict(c) for c in conditions if c.get("type") != "Ready"]
    fields: dict[str, Any] = {
        "phase": outcome.phase.value,
        "observedGeneration": generation,
        "conditions": [*others, ready],
    }
    if outcome.endpoint is not None:
        fields["endpoint"] = outcome.endpoint
    if outcome.secret_name is not None:
        fields["secretName"] = outcome.secret_name
    return fields
