"""skaffold.yaml against skaffold's own JSON schema for its apiVersion (from the skaffold Go
module, fetched by the bootstrap), and against the images and charts it names."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from chart_tools import APP_CHART, REPO, SERVICES, by_name, render
from polysaga_tools.local_identity import LocalIdentity

SKAFFOLD = REPO / "skaffold.yaml"
SCHEMAS = Path(sys.executable).parent.parent / "share" / "skaffold"


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SKAFFOLD.read_text())
    return config


def _validator(api_version: str) -> jsonschema.Draft7Validator:
    schema_file = SCHEMAS / f"{api_version.removeprefix('skaffold/')}.json"
    assert schema_file.exists(), f"{schema_file} missing: run scripts/bootstrap.sh"
    schema = yaml.safe_load(schema_file.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(config: dict[str, Any]) -> list[str]:
    validator = _validator(config["apiVersion"])
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in sorted(validator.iter_errors(config), key=str)
    ]


def test_skaffold_yaml_is_valid_for_its_api_version() -> None:
    config = _config()
    assert config["apiVersion"].startswith("skaffold/v4beta")
    assert _errors(config) == []


def test_the_schema_check_catches_a_misspelt_field() -> None:
    config = _config()
    broken = copy.deepcopy(config)
    broken["build"]["artifacts"][0]["docker"]["buildArgz"] = broken["build"]["artifacts"][0][
        "docker"
    ].pop("buildArgs")
    assert _errors(broken), "a misspelt field must not validate"


def _apply_patches(config: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    """skaffold's profile patches (JSON Patch add, replace and remove) applied to the config."""
    patched = copy.deepcopy(config)
    for patch in profile.get("patches", []):
        assert patch["op"] in {"add", "replace", "remove"}, patch
        *parents, last = patch["path"].strip("/").split("/")
        target: Any = patched
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if patch["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
        else:
            target[int(last) if isinstance(target, list) else last] = patch["value"]
    return patched


@pytest.mark.parametrize("profile", ["kind", "minikube"])
def test_each_profile_patches_into_a_valid_config(profile: str) -> None:
    config = _config()
    (found,) = [p for p in config["profiles"] if p["name"] == profile]
    patched = _apply_patches({k: v for k, v in config.items() if k != "profiles"}, found)
    assert _errors(patched) == []
    release = patched["deploy"]["helm"]["releases"][2]
    assert release["name"] == "polysaga"
    assert release["setValues"]["databases.storageClassName"] == "standard"


def test_every_service_and_the_operator_is_built_from_a_module_that_runs() -> None:
    artifacts = {a["image"]: a for a in _config()["build"]["artifacts"]}
    expected = {f"polysaga-{s}" for s in SERVICES} | {"polysaga-operator"}
    assert set(artifacts) == expected
    for image, artifact in artifacts.items():
        if image == "polysaga-operator":
            assert artifact["docker"]["target"] == "operator"
            assert (REPO / "operator" / "polysaga_operator" / "__main__.py").exists()
            continue
        module = artifact["docker"]["buildArgs"]["SERVICE"]
        assert (REPO / "services" / module / "__main__.py").exists(), (image, module)
        assert (REPO / artifact["context"] / artifact["docker"]["dockerfile"]).exists()
    assert _config()["build"]["local"]["push"] is False


def test_helm_deploys_the_operator_before_the_application_with_the_built_images() -> None:
    releases = {r["name"]: r for r in _config()["deploy"]["helm"]["releases"]}
    app = releases["polysaga"]
    assert "polysaga-operator" in app["dependsOn"]
    assert (REPO / app["chartPath"]).resolve() == APP_CHART
    assert (REPO / releases["polysaga-operator"]["chartPath"]).is_dir()
    templates = app["setValueTemplates"]
    for service in SERVICES:
        key = "polysaga_" + service.replace("-", "_")
        assert templates[f"services.{service}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert templates[f"services.{service}.image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
    # The values skaffold sets exist in the chart (its schema refuses unknown keys).
    render(APP_CHART, values={**app["setValues"], **{k: "x" for k in templates}})


def test_port_forwards_name_services_the_charts_create() -> None:
    config = _config()
    forwards = {f["resourceName"]: f for f in config["portForward"]}
    assert set(forwards) == {"polysaga-gateway", "polysaga-jaeger", "monitoring-grafana"}
    values = next(r for r in config["deploy"]["helm"]["releases"] if r["name"] == "polysaga")
    docs = render(APP_CHART, values=values["setValues"])
    for name in ("polysaga-gateway", "polysaga-jaeger"):
        ports = [p["port"] for p in by_name(docs, "Service", name)["spec"]["ports"]]
        assert forwards[name]["port"] in ports


def test_the_local_profile_patches_into_a_valid_config_the_charts_accept(tmp_path: Path) -> None:
    """The profile of `polysaga cluster up` (tests/cluster runs it for real): no
    kube-prometheus-stack, the local base image, pushes to the cluster's registry, and values
    both charts' schemas accept, the cluster's signing key among them (the values file `up`
    writes, which skaffold finds through POLYSAGA_CLUSTER_AUTH_VALUES)."""
    auth_values = tmp_path / "chart-values.json"
    auth_values.write_text(json.dumps(LocalIdentity.new().chart_values()))
    config = _config()
    (found,) = [p for p in config["profiles"] if p["name"] == "local"]
    patched = _apply_patches({k: v for k, v in config.items() if k != "profiles"}, found)
    assert _errors(patched) == []
    assert patched["build"]["local"]["push"] is True
    for artifact in patched["build"]["artifacts"]:
        assert artifact["docker"]["buildArgs"]["BASE_IMAGE"] == "polysaga-base:bookworm"
    releases = {r["name"]: r for r in patched["deploy"]["helm"]["releases"]}
    assert set(releases) == {"polysaga-operator", "polysaga"}
    app = releases["polysaga"]
    templates = {k: "x" for k in app["setValueTemplates"]}
    assert "{{.POLYSAGA_CLUSTER_AUTH_VALUES}}" in app["valuesFiles"]
    files = [
        auth_values if f == "{{.POLYSAGA_CLUSTER_AUTH_VALUES}}" else REPO / f
        for f in app["valuesFiles"]
    ]
    docs = render(APP_CHART, values_files=files, values=templates)
    for name in ("polysaga-prometheus", "polysaga-mailsink", "polysaga-jaeger", "polysaga-gateway"):
        assert by_name(docs, "Service", name)
    engines = {
        d["spec"]["service"]: d["spec"]["engine"] for d in docs if d["kind"] == "ServiceDatabase"
    }
    assert engines["catalog"] == engines["order-view"] == "ferretdb"
    operator = releases["polysaga-operator"]
    render(
        REPO / "charts" / "polysaga-operator",
        values_files=[REPO / f for f in operator["valuesFiles"]],
        values={k: "x" for k in operator.get("setValueTemplates", {})},
    )
