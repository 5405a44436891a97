"""The one Dockerfile, parsed with buildkit's own parser (the `dockerfile` package): no remote
frontend, a pinned Python base that skaffold's local profile replaces with the Debian base made
here, every wheel from the wheelhouse (no network, hash-checked), the runtime set for services
and the operator's for the operator, the shared layers before the per-service ones, a numeric
non-root user. tests/cluster builds the images for real and measures them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import dockerfile
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SERVICES = ("order", "inventory", "payment", "orchestrator", "sales", "user", "catalog",
            "order_view", "notification", "gateway")  # fmt: skip


@pytest.fixture(scope="module")
def commands() -> tuple[dockerfile.Command, ...]:
    parsed: tuple[dockerfile.Command, ...] = dockerfile.parse_file(str(DOCKERFILE))
    return parsed


def _stages(commands: tuple[dockerfile.Command, ...]) -> dict[str, list[dockerfile.Command]]:
    stages: dict[str, list[dockerfile.Command]] = {}
    current: list[dockerfile.Command] = []
    for command in commands:
        if command.cmd == "FROM":
            current = []
            stages[command.value[-1]] = current
        current.append(command)
    return stages


def _runs(stage: list[dockerfile.Command]) -> str:
    return " ".join(" ".join(c.value) for c in stage if c.cmd == "RUN")


def test_no_remote_frontend_and_a_pinned_base_pyproject_allows() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"(?m)^#\s*syntax=", text), "a syntax line fetches a frontend"
    base = re.search(r"(?m)^ARG BASE_IMAGE=(\S+)$", text)
    assert base and re.fullmatch(r"python:3\.(\d+)\.\d+-slim-bookworm", base.group(1))
    minor = int(base.group(1).split(".")[1])
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert int(requires.split(">=3.")[1].split(",")[0]) <= minor


def test_every_stage_is_on_the_base_or_a_stage_of_this_file(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    stages = _stages(commands)
    for name, stage in stages.items():
        parent = stage[0].value[0]
        assert parent == "${BASE_IMAGE}" or parent in stages, (name, parent)


def test_wheels_come_from_the_wheelhouse_hash_checked_and_no_pip_is_kept(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    stages = _stages(commands)
    for stage, requirements in (("runtime-deps", "runtime.txt"), ("operator-deps", "operator.txt")):
        runs = _runs(stages[stage])
        assert "python3 -m venv --without-pip /opt/venv" in runs
        assert "pip install" in runs and "--no-index" in runs and "--require-hashes" in runs
        assert f"--requirement /wheels/{requirements}" in runs


def test_a_service_gets_the_runtime_venv_and_the_operator_its_own(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    stages = _stages(commands)
    copies = {
        name: [(c.flags, c.value[0]) for c in stage if c.cmd == "COPY"]
        for name, stage in stages.items()
    }
    assert (("--from=runtime-deps",), "/opt/venv") in copies["service"]
    assert (("--from=operator-deps",), "/opt/venv") in copies["operator"]
    assert all(source != "tools/" for _flags, source in copies["service"] + copies["operator"])


def test_the_service_layers_shared_by_all_come_before_the_service_argument(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    service = _stages(commands)["service"]
    arg = next(i for i, c in enumerate(service) if c.cmd == "ARG" and c.value[0] == "SERVICE")
    before = [c for c in service[:arg] if c.cmd in {"COPY", "RUN"}]
    assert any("/opt/venv" in c.value for c in before), "the venv layer is shared"
    assert all("SERVICE" not in " ".join(c.value) for c in before)


def test_every_copied_source_exists_and_is_let_through_dockerignore(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    for command in commands:
        if command.cmd != "COPY" or command.flags:
            continue
        *sources, _destination = command.value
        for source in sources:
            top = source.split("/")[0] if not source.startswith(".") else ".polysaga/wheelhouse"
            assert f"!{top}/" in ignore or f"!{top}" in ignore, source
            if "${" not in source and not source.startswith(".polysaga"):
                assert (REPO / source).exists(), source


def test_both_images_run_as_a_numeric_non_root_user(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    stages = _stages(commands)
    app_values = yaml.safe_load((REPO / "charts" / "polysaga" / "values.yaml").read_text())
    for name in ("service", "operator"):
        stage = stages[name]
        (user,) = [c for c in stage if c.cmd == "USER"]
        uid, _, gid = user.value[0].partition(":")
        assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
        last = max(i for i, c in enumerate(stage) if c.cmd in {"USER", "RUN", "COPY"})
        assert stage[last].cmd == "USER", "nothing after USER runs as root"
    assert app_values["podSecurityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("module", SERVICES)
def test_every_service_module_has_an_entry_point(module: str) -> None:
    assert (REPO / "services" / module / "__main__.py").is_file()


def test_the_operator_has_an_entry_point() -> None:
    assert (REPO / "operator" / "polysaga_operator" / "__main__.py").is_file()
