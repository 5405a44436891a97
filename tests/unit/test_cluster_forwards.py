"""The local cluster's port-forwards choose a ready pod behind the Service, on the pod port
the Service's port is named for, never a terminating pod, and keep their pod while it exists
and no other is ready."""

from __future__ import annotations

from typing import Any

from polysaga_tools.cluster.forwards import Backend, Forward, choose, ready_backends


def _service(name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name}, "spec": {"ports": ports}}


def _slice(service: str, ports: list[dict[str, Any]], *pods: tuple[str, bool, bool]) -> Any:
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
        "ports": ports,
        "endpoints": [
            {
                "conditions": {"ready": ready, "serving": ready, "terminating": terminating},
                "targetRef": {"kind": "Pod", "name": pod, "uid": f"uid-{pod}"},
            }
            for pod, ready, terminating in pods
        ],
    }


JAEGER = _service(
    "jaeger",
    [
        {"name": "ui", "port": 16686, "targetPort": "ui"},
        {"name": "otlp-http", "port": 4318, "targetPort": "otlp-http"},
    ],
)


def test_the_pod_port_is_the_one_the_service_port_is_named_for() -> None:
    listing = {
        "items": [
            JAEGER,
            _slice(
                "jaeger",
                [{"name": "otlp-http", "port": 14318}, {"name": "ui", "port": 26686}],
                ("jaeger-a", True, False),
            ),
        ]
    }
    forward = Forward("jaeger", "polysaga", "jaeger", 16686, 40000)
    assert ready_backends(forward, listing) == [Backend("jaeger-a", "uid-jaeger-a", 26686)]


def test_only_ready_pods_that_are_not_terminating() -> None:
    order = _service("order", [{"name": "http", "port": 8000, "targetPort": "http"}])
    listing = {
        "items": [
            order,
            _slice(
                "order",
                [{"name": "http", "port": 8000}],
                ("order-old", True, True),
                ("order-starting", False, False),
                ("order-new", True, False),
            ),
            # Another Service's slice with a ready pod: never chosen for this one.
            _slice("payment", [{"name": "http", "port": 8000}], ("payment-a", True, False)),
        ]
    }
    forward = Forward("order", "polysaga", "order", 8000, 40001)
    assert ready_backends(forward, listing) == [Backend("order-new", "uid-order-new", 8000)]


def test_nothing_while_no_pod_is_ready_or_the_service_lacks_the_port() -> None:
    order = _service("order", [{"name": "http", "port": 8000, "targetPort": "http"}])
    starting = _slice("order", [{"name": "http", "port": 8000}], ("order-a", False, False))
    forward = Forward("order", "polysaga", "order", 8000, 40002)
    assert ready_backends(forward, {"items": [order, starting]}) == []
    assert (
        ready_backends(Forward("order", "polysaga", "order", 9000, 40003), {"items": [order]}) == []
    )
    assert ready_backends(forward, {"items": []}) == []


OLD, NEW = Backend("order-old", "u1", 8000), Backend("order-new", "u2", 8000)


def test_a_forward_keeps_its_pod_while_ready_and_moves_when_it_is_gone_or_terminating() -> None:
    assert choose(OLD, {OLD: True, NEW: True}) == OLD
    # Deleted: terminating pods are not among the endpoints, nor are pods that are gone.
    assert choose(OLD, {NEW: True}) == NEW
    assert choose(OLD, {}) is None
    assert choose(None, {NEW: False}) is None


def test_an_unready_pod_is_kept_only_while_no_other_is_ready() -> None:
    # A readiness probe timing out on a loaded machine does not cut the only way in.
    assert choose(OLD, {OLD: False}) == OLD
    assert choose(OLD, {OLD: False, NEW: True}) == NEW
    # A recreated StatefulSet pod has its old name and a new uid: it is another pod.
    assert choose(OLD, {Backend("order-old", "u3", 8000): True}) == Backend("order-old", "u3", 8000)
