"""The lazy bootstrap's plans (`scripts/bootstrap.sh --plan`, which installs nothing): each command
gets the parts it runs and no other, the tests get every part, and every part is well formed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTS = REPO / "scripts" / "bootstrap.d"
# The parts only the tests (or the cluster) need; the main job never waits on one of them.
TEST_ONLY = {"jaeger", "prometheus", "helm", "kubernetes", "skaffold-schema", "dev"}


def plan(*args: str) -> tuple[list[str], set[str]]:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "--plan", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    fields = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields["parts"], set(fields["groups"])


@pytest.mark.parametrize("command", ["demo", "up", "bench", "chaos"])
def test_a_command_that_starts_the_stack_gets_the_stack_and_nothing_the_tests_alone_need(
    command: str,
) -> None:
    parts, groups = plan("--for", command, "--orders", "300", "--scarce-stock")
    assert parts[:2] == ["uv", "venv"], "uv and .venv come first"
    assert {"nats", "postgresql", "ferretdb", "stack"} <= set(parts)
    assert not TEST_ONLY & set(parts), TEST_ONLY & set(parts)
    assert groups == {"tools"}, "the CLI's group, not the test tools"
    assert parts.index("postgresql") < parts.index("stack"), "a part comes after what it needs"


def test_the_flags_add_jaeger_and_prometheus() -> None:
    parts, _ = plan("--for", "up", "--with-jaeger", "--with-prometheus")
    assert {"jaeger", "prometheus"} <= set(parts)
    assert not {"helm", "kubernetes", "skaffold-schema"} & set(parts)
    assert plan("--for", "up", "--with-prometheus")[0].count("jaeger") == 0


def test_a_command_that_only_attaches_gets_the_cli() -> None:
    assert plan("--for", "check", "--attach", ".polysaga/stack.json") == (
        ["uv", "venv", "cli"],
        {"tools"},
    )


def _cluster_only() -> set[str]:
    return {p.stem for p in PARTS.glob("*.sh") if "in_all=false" in p.read_text().splitlines()}


def test_the_tests_get_every_part_but_the_clusters_and_the_dev_group() -> None:
    parts, groups = plan("all")
    cluster_only = _cluster_only()
    assert {"cluster", "skaffold", "cluster-node"} <= cluster_only
    assert sorted(parts) == sorted(p.stem for p in PARTS.glob("*.sh") if p.stem not in cluster_only)
    assert "dev" in groups
    assert plan() == (parts, groups), "no component named means all"


def test_the_cluster_gets_its_own_parts() -> None:
    parts, _ = plan("cluster")
    assert _cluster_only() <= set(parts)
    assert parts.index("cluster-runtime") < parts.index("cluster-images") < parts.index("cluster")


def test_every_part_says_what_it_installs_on_its_first_line() -> None:
    for part in PARTS.glob("*.sh"):
        first = part.read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 20, part.name


def test_an_unknown_component_is_refused_with_the_list() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "--plan", "no-such-tool"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown component 'no-such-tool'" in result.stderr
    assert "ferretdb" in result.stderr
