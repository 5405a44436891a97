"""The application chart, rendered by the real helm: lint, schema, and what every manifest must
carry (security context, resources, probes, configuration and Secret wiring)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from chart_tools import (
    APP_CHART,
    OPERATOR_CHART,
    SERVICES,
    by_name,
    env_of,
    helm_template,
    of_kind,
    pod_spec,
    render,
    run,
    tool,
)
from polysaga.events import declaration
from polysaga.messaging.permissions import inbox_prefix

CI_VALUES = sorted((APP_CHART / "ci").glob("*-values.yaml"))
EVERYTHING_ON = {
    "jaeger.enabled": True,
    "metrics.serviceMonitor.enabled": True,
    "nats.cluster.enabled": True,
    "nats.syncAlways": True,
}
STORES = {
    "order": "postgresql",
    "inventory": "postgresql",
    "payment": "postgresql",
    "orchestrator": "postgresql",
    "sales": "postgresql",
    "user": "postgresql",
    "notification": "postgresql",
    "catalog": "mongodb",
    "order-view": "mongodb",
}
DATABASE_URL_KEY = {"postgresql": "POLYSAGA_DATABASE_URL", "mongodb": "POLYSAGA_MONGO_URL"}


@pytest.mark.parametrize(
    ("chart", "values"),
    [(APP_CHART, None), *((APP_CHART, v) for v in CI_VALUES), (OPERATOR_CHART, None)]
    + [(OPERATOR_CHART, v) for v in sorted((OPERATOR_CHART / "ci").glob("*-values.yaml"))],
    ids=lambda p: p.name if isinstance(p, Path) else "defaults",
)
def test_helm_lint_strict_is_clean(chart: Path, values: Path | None) -> None:
    argv = [tool("helm"), "lint", "--strict", str(chart)]
    if values is not None:
        argv += ["--values", str(values)]
    result = run(argv)
    assert "0 chart(s) failed" in result.stdout, result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"services.order.replicas": 2}, "replicas"),
        ({"nats.cluster.replicas": 2}, "replicas"),
        ({"services.catalog.database.mode": "clustered"}, "mode"),
        ({"tracing.sampleRatio": 2}, "sampleRatio"),
        ({"smtp.port": 0}, "port"),
    ],
    ids=["unknown-key", "even-cluster", "bad-mode", "ratio-above-one", "port-zero"],
)
def test_values_violating_the_schema_are_refused_with_a_clear_message(
    values: dict[str, Any], named: str
) -> None:
    result = helm_template(APP_CHART, values=values, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr


def test_a_values_file_with_a_misspelt_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("nats:\n  syncAllways: true\n")
    result = helm_template(APP_CHART, values_files=[bad], check=False)
    assert result.returncode != 0
    assert "syncAllways" in result.stderr and "additional properties" in result.stderr.lower()


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}]


@pytest.mark.parametrize("values", [{}, EVERYTHING_ON], ids=["defaults", "everything-on"])
def test_every_container_is_locked_down_bounded_and_probed(values: dict[str, Any]) -> None:
    docs = render(APP_CHART, values=values)
    workloads = _workloads(docs)
    assert len(workloads) >= len(SERVICES) + 1  # every service and NATS
    for workload in workloads:
        spec = pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec.get("automountServiceAccountToken") is False, where
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), where
            assert container["livenessProbe"] and container["readinessProbe"], where


def test_each_service_has_its_deployment_service_and_account_probed_on_its_health_paths() -> None:
    docs = render(APP_CHART)
    for service in SERVICES:
        name = f"polysaga-{service}"
        deployment = by_name(docs, "Deployment", name)
        by_name(docs, "Service", name)
        by_name(docs, "ServiceAccount", name)
        spec = pod_spec(deployment)
        assert spec["serviceAccountName"] == name
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "the one writable path is an emptyDir"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == service
        assert labels["app.kubernetes.io/instance"] == "polysaga"


def test_services_get_their_settings_nats_user_and_database_secret() -> None:
    docs = render(APP_CHART)
    permissions = json.loads((APP_CHART / "files" / "nats-permissions.json").read_text())
    databases = {d["spec"]["service"]: d for d in of_kind(docs, "ServiceDatabase")}
    assert {s: d["spec"]["engine"] for s, d in databases.items()} == STORES
    users_secret = by_name(docs, "Secret", "polysaga-nats-users")
    for service in SERVICES:
        (container,) = pod_spec(by_name(docs, "Deployment", f"polysaga-{service}"))["containers"]
        env = env_of(container)
        assert env["POLYSAGA_SERVICE_NAME"] == service
        assert env["POLYSAGA_HTTP_HOST"] == "0.0.0.0"
        assert env["POLYSAGA_HTTP_PORT"] == "8000"
        if service in permissions:
            assert env["POLYSAGA_NATS_URL"] == "nats://polysaga-nats:4222"
            assert env["POLYSAGA_NATS_USER"] == service
            ref = env["POLYSAGA_NATS_PASSWORD"]["secretKeyRef"]
            assert ref == {"name": "polysaga-nats-users", "key": service}
            assert service in users_secret["data"]
        else:
            assert "POLYSAGA_NATS_URL" not in env  # the gateway never talks to NATS
        if service in STORES:
            (source,) = container["envFrom"]
            # The operator names a ServiceDatabase's credentials Secret <name>-credentials.
            expected = f"{databases[service]['metadata']['name']}-credentials"
            assert source["secretRef"]["name"] == expected
        else:
            assert "envFrom" not in container


def test_the_gateway_reaches_the_services_it_composes_by_their_services() -> None:
    docs = render(APP_CHART)
    (container,) = pod_spec(by_name(docs, "Deployment", "polysaga-gateway"))["containers"]
    urls = json.loads(env_of(container)["POLYSAGA_SERVICE_URLS"])
    assert set(urls) == {"order", "user", "catalog", "order-view"}
    for service, url in urls.items():
        by_name(docs, "Service", f"polysaga-{service}")
        assert url == f"http://polysaga-{service}:8000"


def test_tracing_goes_to_the_bundled_jaeger_or_the_configured_endpoint() -> None:
    def otlp(values: dict[str, Any]) -> str | None:
        docs = render(APP_CHART, values=values)
        (container,) = pod_spec(by_name(docs, "Deployment", "polysaga-order"))["containers"]
        value: str | None = env_of(container).get("POLYSAGA_OTLP_ENDPOINT")
        return value

    assert otlp({}) is None
    assert otlp({"jaeger.enabled": True}) == "http://polysaga-jaeger:4318"
    assert otlp({"tracing.otlpEndpoint": "http://collector:4318"}) == "http://collector:4318"
    docs = render(APP_CHART, values={"jaeger.enabled": True})
    ports = {p["name"] for p in by_name(docs, "Service", "polysaga-jaeger")["spec"]["ports"]}
    assert {"ui", "otlp-http"} <= ports


def test_extra_settings_reach_every_service_and_one_service_can_override_them() -> None:
    docs = render(
        APP_CHART, values={"env.ORDER_DEADLINE_S": 60, "services.order.env.ORDER_DEADLINE_S": 90}
    )
    order = env_of(pod_spec(by_name(docs, "Deployment", "polysaga-order"))["containers"][0])
    payment = env_of(pod_spec(by_name(docs, "Deployment", "polysaga-payment"))["containers"][0])
    assert order["POLYSAGA_ORDER_DEADLINE_S"] == "90"
    assert payment["POLYSAGA_ORDER_DEADLINE_S"] == "60"


def _nats_conf(docs: list[dict[str, Any]]) -> str:
    conf: str = by_name(docs, "ConfigMap", "polysaga-nats-config")["data"]["nats.conf"]
    return conf


def test_nats_is_one_jetstream_server_with_file_storage_by_default() -> None:
    docs = render(APP_CHART)
    nats = by_name(docs, "StatefulSet", "polysaga-nats")
    assert nats["spec"]["replicas"] == 1
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    conf = _nats_conf(docs)
    assert "store_dir: /data/jetstream" in conf
    assert "cluster {" not in conf and "sync_interval" not in conf
    order = env_of(pod_spec(by_name(docs, "Deployment", "polysaga-order"))["containers"][0])
    assert "POLYSAGA_STREAM_REPLICAS" not in order, "R1 on a single server"


def test_nats_cluster_has_three_routed_servers_and_can_sync_always() -> None:
    docs = render(APP_CHART, values={"nats.cluster.enabled": True, "nats.syncAlways": True})
    assert by_name(docs, "StatefulSet", "polysaga-nats")["spec"]["replicas"] == 3
    conf = _nats_conf(docs)
    assert "sync_interval: always" in conf
    for i in range(3):
        route = f"nats://polysaga-nats-{i}.polysaga-nats-headless.polysaga.svc:6222"
        assert route in conf
    for service in declaration.services():
        deployment = by_name(docs, "Deployment", f"polysaga-{service}")
        assert env_of(pod_spec(deployment)["containers"][0])["POLYSAGA_STREAM_REPLICAS"] == "3"
    headless = by_name(docs, "Service", "polysaga-nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True


def test_the_nats_permissions_file_covers_exactly_the_services_that_use_nats() -> None:
    permissions = json.loads((APP_CHART / "files" / "nats-permissions.json").read_text())
    assert set(permissions) == set(declaration.services())
    for service, perms in permissions.items():
        assert set(perms) == {"publish", "subscribe"}, service
        allowed = set(perms["publish"]["allow"])
        for event in declaration.published_by(service):
            assert {event.subject, event.context.subjects} & allowed, (service, event.name)
        assert perms["subscribe"]["allow"] == [f"{inbox_prefix(service)}.>"], service


def test_nats_passwords_are_never_in_the_config_map() -> None:
    docs = render(APP_CHART)
    secret = by_name(docs, "Secret", "polysaga-nats-users")
    auth = by_name(docs, "ConfigMap", "polysaga-nats-config")["data"]["auth.conf"]
    import base64

    for password in secret["data"].values():
        assert base64.b64decode(password).decode() not in auth
    assert "password: $PASSWORD_ORDER_VIEW" in auth


def test_no_users_secret_is_rendered_when_it_is_provided_outside_the_chart() -> None:
    docs = render(APP_CHART, values={"nats.usersSecret.create": False})
    assert not [
        d for d in of_kind(docs, "Secret") if d["metadata"]["name"] == "polysaga-nats-users"
    ]


def test_service_monitor_scrapes_every_service_metrics_endpoint() -> None:
    assert not of_kind(render(APP_CHART), "ServiceMonitor")
    docs = render(APP_CHART, values={"metrics.serviceMonitor.enabled": True})
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted(SERVICES)


def _chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "polysaga"
    shutil.copytree(APP_CHART, copy)
    for dashboard in (copy / "dashboards").glob("*.json"):
        dashboard.unlink()
    return copy


def test_dashboards_become_grafana_sidecar_config_maps(tmp_path: Path) -> None:
    chart = _chart_copy(tmp_path)
    assert not [
        d
        for d in of_kind(render(chart), "ConfigMap")
        if "grafana_dashboard" in d["metadata"]["labels"]
    ], "no dashboards, no ConfigMaps"
    (chart / "dashboards").mkdir(exist_ok=True)
    (chart / "dashboards" / "saga_overview.json").write_text('{"title": "Sagas", "panels": []}')
    docs = render(chart)
    (config_map,) = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["name"] == "polysaga-dashboard-saga-overview"
    assert json.loads(config_map["data"]["saga_overview.json"])["title"] == "Sagas"


def test_every_name_fits_a_dns_label_even_with_a_long_release_name() -> None:
    release = "a-release-name-as-long-as-helm-allows-" + "x" * 15  # 53 characters
    docs = render(APP_CHART, release=release, values=EVERYTHING_ON)
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(names) == len(set(names)), "truncation made two names collide"
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
        if doc["kind"] == "StatefulSet":  # its pods' controller-revision-hash label adds 11
            assert len(doc["metadata"]["name"]) <= 52, doc["metadata"]["name"]
        if doc["kind"] == "ServiceDatabase":  # the operator names its Secret <name>-credentials
            assert len(doc["metadata"]["name"]) <= 40, doc["metadata"]["name"]
        for value in doc["metadata"].get("labels", {}).values():
            assert len(str(value)) <= 63


def test_a_shared_database_names_the_admin_secret_and_needs_one() -> None:
    values = {"services.order.database.mode": "shared", "databases.sharedAdminSecret": "pg-admin"}
    docs = render(APP_CHART, values=values)
    (order,) = [d for d in of_kind(docs, "ServiceDatabase") if d["spec"]["service"] == "order"]
    assert order["spec"]["sharedServer"] == {"adminSecretRef": {"name": "pg-admin", "key": "uri"}}
    missing = helm_template(
        APP_CHART, values={"services.order.database.mode": "shared"}, check=False
    )
    assert missing.returncode != 0 and "databases.sharedAdminSecret" in missing.stderr
    mongo = helm_template(
        APP_CHART, values={"services.catalog.database.mode": "shared"}, check=False
    )
    assert mongo.returncode != 0 and "mode" in mongo.stderr, "shared mode is PostgreSQL only"


def test_database_volumes_take_the_configured_storage_class() -> None:
    docs = render(APP_CHART, values={"databases.storageClassName": "fast"})
    for database in of_kind(docs, "ServiceDatabase"):
        assert database["spec"]["storage"] == {"size": "1Gi", "storageClassName": "fast"}


def test_the_nats_image_is_the_server_version_the_tests_run_its_config_with() -> None:
    version = run([tool("nats-server"), "--version"]).stdout.split()[-1].removeprefix("v")
    docs = render(APP_CHART)
    (container,) = pod_spec(by_name(docs, "StatefulSet", "polysaga-nats"))["containers"]
    assert container["image"] == f"nats:{version}-alpine"
