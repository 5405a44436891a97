"""The operator's pure manifest builders and status rules, without a cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from polysaga_operator import manifests
from polysaga_operator.engines import EngineImages
from polysaga_operator.manifests import Credentials, OperatorIdentity, Target
from polysaga_operator.spec import InvalidSpec, parse_spec, sql_name
from polysaga_operator.status import Phase, statefulset_outcome, status_fields

IDENTITY = OperatorIdentity("polysaga-system", {"app.kubernetes.io/name": "polysaga-operator"})


def target(**spec: Any) -> Target:
    base = {"service": "order", "engine": "postgresql", "version": "16"}
    return Target("order-db", "shop", parse_spec({**base, **spec}))


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_postgresql_secret_carries_the_asyncpg_url_the_services_read() -> None:
    t = target()
    secret = manifests.credentials_secret(
        t, Credentials("order", "s3cret", t.host, t.port, "order")
    )
    values = decoded(secret)
    assert values["POLYSAGA_DATABASE_URL"] == (
        "postgresql+asyncpg://order:s3cret@order-db.shop.svc:5432/order"
    )
    assert values["password"] == "s3cret"
    assert secret["metadata"]["name"] == "order-db-credentials"


def test_mongodb_secret_carries_a_mongodb_url() -> None:
    t = target(service="order-view", engine="mongodb", version="7.0")
    values = decoded(
        manifests.credentials_secret(
            t, Credentials(t.user, "p@ss/word", t.host, t.port, t.database)
        )
    )
    assert values["POLYSAGA_MONGO_URL"] == (
        "mongodb://order_view:p%40ss%2Fword@order-db.shop.svc:27017/order_view?authSource=admin"
    )


def test_statefulset_runs_the_versioned_image_as_non_root_with_the_requested_volume() -> None:
    sts = manifests.statefulset(target(storage={"size": "5Gi", "storageClassName": "fast"}))
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "docker.io/library/postgres:16"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"readinessProbe", "livenessProbe"} <= container.keys()
    assert manifests.claim_size(sts) == "5Gi"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    assert sts["spec"]["selector"]["matchLabels"].items() <= sts["metadata"]["labels"].items()


@pytest.mark.parametrize(("policy", "when_deleted"), [("Retain", "Retain"), ("Delete", "Delete")])
def test_volume_retention_follows_the_deletion_policy(policy: str, when_deleted: str) -> None:
    sts = manifests.statefulset(target(deletionPolicy=policy))
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == when_deleted


def test_network_policy_admits_only_the_owning_service_and_the_operator() -> None:
    policy = manifests.network_policy(target(), IDENTITY)
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert rule["from"][0] == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "order"}}}
    assert rule["from"][1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "polysaga-system"
    }
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "order-db"


def test_every_child_carries_the_standard_labels() -> None:
    t = target()
    children = [
        manifests.credentials_secret(t, Credentials("u", "p", "h", 1, "d")),
        manifests.headless_service(t),
        manifests.statefulset(t),
        manifests.network_policy(t, IDENTITY),
    ]
    for child in children:
        child_labels = child["metadata"]["labels"]
        assert child_labels["app.kubernetes.io/managed-by"] == "polysaga-operator"
        assert child_labels["app.kubernetes.io/part-of"] == "polysaga"
        assert child_labels["app.kubernetes.io/instance"] == "order-db"


def test_shared_mode_without_an_admin_secret_is_invalid() -> None:
    with pytest.raises(InvalidSpec, match="sharedServer"):
        parse_spec({"service": "order", "engine": "postgresql", "version": "16", "mode": "shared"})


def test_sql_names_are_plain_identifiers_unique_per_namespace() -> None:
    assert sql_name("shop-eu", "order-view") == "shop_eu_order_view"
    assert len(sql_name("n" * 63, "s" * 40)) == 63


def sts_status(generation: int, observed: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": ready,
        },
    }


def test_phase_is_pending_without_ready_replicas_and_ready_with_them() -> None:
    assert statefulset_outcome(sts_status(1, 1, 0), "h:1", "s").phase is Phase.PENDING
    assert statefulset_outcome(sts_status(2, 1, 1), "h:1", "s").phase is Phase.PENDING
    assert statefulset_outcome(sts_status(2, 2, 1), "h:1", "s").phase is Phase.READY
    # A StatefulSet no controller has looked at yet has no status at all.
    assert statefulset_outcome({"metadata": {"generation": 1}}, "h:1", "s").phase is Phase.PENDING


def test_ready_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    pending = statefulset_outcome(sts_status(1, 1, 0), "h:1", "s")
    first = status_fields(pending, 1, [])
    (condition,) = first["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "DatabaseNotReady")
    again = status_fields(pending, 2, first["conditions"])
    assert again["conditions"][0]["lastTransitionTime"] == condition["lastTransitionTime"]
    assert again["observedGeneration"] == 2


def test_ferretdb_runs_ferretdb_beside_its_postgresql_from_the_images_given() -> None:
    t = target(service="catalog", engine="ferretdb", version="1.24.2")
    images = EngineImages(
        {"postgresql": "reg:5000/postgres", "ferretdb": "reg:5000/ferretdb"}, "15"
    )
    pod = manifests.statefulset(t, images)["spec"]["template"]["spec"]
    backend, ferretdb = pod["containers"]
    assert backend["image"] == "reg:5000/postgres:15"
    assert ferretdb["image"] == "reg:5000/ferretdb:1.24.2"
    # Clients reach FerretDB only; the data volume is PostgreSQL's.
    assert [p["name"] for p in ferretdb["ports"]] == ["db"]
    assert {m["name"] for m in backend["volumeMounts"]} >= {manifests.DATA_VOLUME}
    assert manifests.DATA_VOLUME not in {m["name"] for m in ferretdb["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in ferretdb["env"]}
    assert env["FERRETDB_POSTGRESQL_URL"] == "postgres://127.0.0.1:5432/catalog", "no user in it"
    assert "readinessProbe" in backend and "readinessProbe" in ferretdb
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_ferretdb_secret_carries_a_plain_login_on_one_connection() -> None:
    t = target(service="catalog", engine="ferretdb", version="1.24.2")
    values = decoded(
        manifests.credentials_secret(t, Credentials(t.user, "pw", t.host, t.port, t.database))
    )
    assert values["POLYSAGA_MONGO_URL"] == (
        "mongodb://catalog:pw@order-db.shop.svc:27017/catalog?authMechanism=PLAIN&maxPoolSize=1"
    )


def test_the_public_images_are_the_default() -> None:
    pod = manifests.statefulset(target())["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "docker.io/library/postgres:16"
