"""The local cluster's identity provider, as ``polysaga up`` has one: a signing key made once per
cluster and kept in its directory (mode 0600), whose JWKS, issuer and audience go to the chart
as a values file (so the gateway in its pod trusts the tokens the CLI signs), and the state
file's ``auth`` section, with the operator token read back from the Secret the chart made."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from polysaga_tools.cluster.layout import ClusterLayout
from polysaga_tools.local_identity import LocalIdentity


def _key_file(layout: ClusterLayout) -> Path:
    return layout.auth / "signing-key.pem"


def chart_values_file(layout: ClusterLayout) -> Path:
    """The values file skaffold's local profile gives the application chart (through
    POLYSAGA_CLUSTER_AUTH_VALUES, which ``polysaga cluster env`` exports)."""
    return layout.auth / "chart-values.json"


def _load(layout: ClusterLayout, operator_token: str) -> LocalIdentity:
    return LocalIdentity(_key_file(layout).read_text(), operator_token)


def ensure(layout: ClusterLayout) -> None:
    """The signing key (made on the first call) and the chart values that name its JWKS."""
    key = _key_file(layout)
    if not key.exists():
        layout.auth.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(LocalIdentity.new().signing_key_pem)
    # The operator token is the chart's own (its Secret); the values carry public keys only.
    values = _load(layout, operator_token="").chart_values()
    chart_values_file(layout).write_text(json.dumps(values, indent=2))


def state(layout: ClusterLayout, operator_token: str) -> dict[str, Any]:
    """The state file's ``auth`` section, the same shape as ``polysaga up`` writes."""
    return _load(layout, operator_token).state()
