"""``python -m polysaga_operator``: runs the operator (standalone: one replica, no peering)."""

from __future__ import annotations

import kopf

from polysaga_operator import main


def run() -> None:
    settings = main.SETTINGS
    kopf.configure(verbose=False)
    kopf.run(
        standalone=True,
        clusterwide=not settings.watch_namespaces,
        namespaces=settings.watch_namespaces,
        liveness_endpoint=settings.liveness_endpoint or None,
    )


if __name__ == "__main__":
    run()
