"""What a cluster could leave behind on the host, captured so that the state after ``down``
can be compared with the state before ``up``: iptables rules, links, routes, mounts, cgroups,
sysctls, the host paths its components hard-code, and processes in its cgroup tree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from polysaga_tools.cluster.host import CLUSTER_CGROUP, HOST_PATHS, cgroup_hierarchies


def _iptables_rules() -> frozenset[str]:
    """Rules and chains, without counters; an empty built-in chain with policy ACCEPT is the
    same as none (iptables-nft leaves the tables it was asked about in place)."""
    found: set[str] = set()
    for table in ("filter", "nat", "mangle", "raw"):
        done = subprocess.run(
            ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
        )
        for line in done.stdout.splitlines():
            if line.startswith("-P ") and line.endswith(" ACCEPT"):
                continue
            found.add(f"{table}: {line}")
    return frozenset(found)


def _lines(*argv: str) -> frozenset[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return frozenset(line.strip() for line in done.stdout.splitlines() if line.strip())


@dataclass(frozen=True)
class HostState:
    iptables: frozenset[str]
    links: frozenset[str]
    routes: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    sysctls: frozenset[str]
    host_paths: frozenset[str]

    @classmethod
    def capture(cls) -> HostState:
        mounts = frozenset(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        )
        links = frozenset(
            line.split(":")[1].strip().split("@")[0] for line in _lines("ip", "-o", "link")
        )
        cgroups = frozenset(
            str(h / CLUSTER_CGROUP) for h in cgroup_hierarchies() if (h / CLUSTER_CGROUP).exists()
        )
        sysctls = frozenset(
            f"{key}={Path('/proc/sys', key).read_text().strip()}"
            for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")
        )
        host_paths = frozenset(
            str(p) for raw in HOST_PATHS if (root := Path(raw)).exists() for p in root.rglob("*")
        ) | frozenset(raw for raw in HOST_PATHS if Path(raw).exists())
        return cls(
            iptables=_iptables_rules(),
            links=links,
            routes=_lines("ip", "route"),
            mounts=mounts,
            cgroups=cgroups,
            sysctls=sysctls,
            host_paths=host_paths,
        )

    def differences(self, other: HostState) -> dict[str, tuple[list[str], list[str]]]:
        """Per field: (only before, only after)."""
        found: dict[str, tuple[list[str], list[str]]] = {}
        for field in self.__dataclass_fields__:
            before, after = getattr(self, field), getattr(other, field)
            if before != after:
                found[field] = (sorted(before - after), sorted(after - before))
        return found
