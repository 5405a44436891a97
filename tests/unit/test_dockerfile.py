"""The one Dockerfile, parsed with buildkit's own parser (the `dockerfile` package): what can be
checked without a Docker engine — pinned slim base matching requires-python, multi-stage venv,
numeric non-root user, read-only-root friendly settings, sources that exist, entry points that
exist for every image skaffold builds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import dockerfile
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
MODULES = (
    "order",
    "inventory",
    "payment",
    "user",
    "catalog",
    "order_view",
    "notification",
    "gateway",
    "polysaga_operator",
)


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
            stages[command.value[-1]] = current  # FROM image AS name
        current.append(command)
    return stages


def _arg_default(commands: tuple[dockerfile.Command, ...], name: str) -> str:
    for command in commands:
        if command.cmd == "ARG" and command.value[0].startswith(f"{name}="):
            return str(command.value[0].split("=", 1)[1])
    raise AssertionError(f"no ARG {name} with a default")


def test_the_base_is_a_slim_python_pinned_to_an_exact_version_pyproject_allows(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    base = _arg_default(commands, "PYTHON_IMAGE")
    match = re.fullmatch(r"python:(3)\.(\d+)\.(\d+)-slim-bookworm", base)
    assert match, f"{base} is not python:3.X.Y-slim-bookworm"
    minor = int(match.group(2))
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low = int(re.search(r">=3\.(\d+)", requires).group(1))  # type: ignore[union-attr]
    high = int(re.search(r"<3\.(\d+)", requires).group(1))  # type: ignore[union-attr]
    assert low <= minor < high, (base, requires)
    froms = [c.value[0] for c in commands if c.cmd == "FROM"]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], "both stages on the pinned base"


def test_the_builder_installs_into_a_venv_that_the_runtime_copies(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    stages = _stages(commands)
    assert list(stages) == ["builder", "runtime"]
    builder_runs = " ".join(" ".join(c.value) for c in stages["builder"] if c.cmd == "RUN")
    assert "python -m venv /opt/venv" in builder_runs
    assert "/opt/venv/bin/pip install" in builder_runs
    copies = [c for c in stages["runtime"] if c.cmd == "COPY"]
    assert [(c.flags, c.value) for c in copies] == [
        (("--from=builder",), ("/opt/venv", "/opt/venv"))
    ], "the runtime gets the venv and nothing else: no compiler, no sources"


def test_the_builder_installs_the_locked_runtime_set_hash_checked(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    """From uv.lock, as tests/unit/test_dependency_lock.py checks its exports: the runtime set
    (`--no-dev`) for a service, the operator group for the operator; the tooling never."""
    builder = _stages(commands)["builder"]
    runs = " ".join(" ".join(c.value) for c in builder if c.cmd == "RUN")
    assert "--require-hashes -r /tmp/uv-requirements.txt" in runs, "uv itself is hash-checked"
    assert "uv export --quiet --frozen --no-emit-workspace $selection" in runs
    assert 'polysaga_operator) selection="--only-group operator"' in runs
    assert '*) selection="--no-dev"' in runs
    assert "/opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.txt" in runs
    copied = {source for c in builder if c.cmd == "COPY" for source in c.value[:-1]}
    assert {"pyproject.toml", "uv.lock", "tools/pyproject.toml"} <= copied
    assert "tools/" not in copied, "no tooling code in an image (only tools/pyproject.toml)"


def test_every_copied_source_exists_and_is_let_through_dockerignore(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    for command in commands:
        if command.cmd != "COPY" or command.flags:
            continue
        *sources, _destination = command.value
        for source in sources:
            assert (REPO / source).exists(), source
            assert f"!{source}" in ignore or f"!{source.rstrip('/')}/" in ignore, source


def test_the_runtime_runs_as_a_numeric_non_root_user(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    runtime = _stages(commands)["runtime"]
    (user,) = [c for c in runtime if c.cmd == "USER"]
    uid, _, gid = user.value[0].partition(":")
    assert uid.isdigit() and int(uid) > 0, "Kubernetes' runAsNonRoot needs a numeric user"
    assert gid.isdigit() and int(gid) > 0
    last = max(i for i, c in enumerate(runtime) if c.cmd in {"USER", "RUN", "COPY"})
    assert runtime[last].cmd == "USER", "nothing after USER runs as root"
    app_values = yaml.safe_load((REPO / "charts" / "polysaga" / "values.yaml").read_text())
    assert app_values["podSecurityContext"]["runAsUser"] == int(uid)


def test_the_runtime_writes_nothing_outside_tmp(commands: tuple[dockerfile.Command, ...]) -> None:
    env: dict[str, str] = {}
    for command in _stages(commands)["runtime"]:
        if command.cmd == "ENV":
            pairs = command.value
            env.update(zip(pairs[::2], pairs[1::2], strict=True))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp", "libraries that write under ~ write into the emptyDir"
    assert env["POLYSAGA_HTTP_HOST"] == "0.0.0.0"


def test_the_image_runs_the_module_named_by_its_build_argument(
    commands: tuple[dockerfile.Command, ...],
) -> None:
    runtime = _stages(commands)["runtime"]
    assert any(c.cmd == "ARG" and c.value[0] == "SERVICE" for c in runtime)
    (cmd,) = [c for c in runtime if c.cmd == "CMD"]
    assert cmd.json and cmd.value[-1] == 'exec python -m "$POLYSAGA_MODULE"'
    envs = [c for c in runtime if c.cmd == "ENV"]
    assert any("POLYSAGA_MODULE" in c.value and "${SERVICE}" in c.value for c in envs)


@pytest.mark.parametrize("module", MODULES)
def test_every_image_module_has_an_entry_point(module: str) -> None:
    root = REPO / ("operator" if module == "polysaga_operator" else "services")
    assert (root / module / "__main__.py").is_file(), f"python -m {module} needs __main__.py"


def test_the_installed_distribution_holds_every_image_module() -> None:
    """A service image installs the project (its packages are found in services/), the operator
    image the operator's own distribution (operator/pyproject.toml)."""
    for root, modules in (
        (REPO, [m for m in MODULES if m != "polysaga_operator"]),
        (REPO / "operator", ["polysaga_operator"]),
    ):
        pyproject = tomllib.loads((root / "pyproject.toml").read_text())
        (where,) = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
        for module in modules:
            assert (root / where / module / "__init__.py").is_file(), module
