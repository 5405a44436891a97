"""The host-side pieces of a cluster, each with its undo: the bridge and its routes, sysctls,
iptables rules, a cgroup tree holding every process the cluster starts (so ``down`` finds the
containers and shims too, by PID), and the mounts left under the cluster's directories."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from polysaga_tools.cluster.layout import BRIDGE, POD_CIDR, SERVICE_CIDR, pod_gateway_prefix
from polysaga_tools.cluster.ledger import Ledger
from polysaga_tools.servers import ServerError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLUSTER_CGROUP = "polysaga-cluster"
# The v1 controllers the kubelet needs (it refuses to start without them).
REQUIRED_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise ServerError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


class ClusterExists(ServerError):
    """A cluster is up already: ``up`` refuses, and must not take that one down."""


# --- preflight ----------------------------------------------------------------------------


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup v1 hierarchy (one directory per controller, or named)."""
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def preflight() -> None:
    """Clear errors for what this machine lacks, before anything is created."""
    if os.geteuid() != 0:
        raise ServerError("polysaga cluster needs root (it creates a bridge, mounts and cgroups)")
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        raise ServerError(
            "this host runs cgroup v2 only; the local cluster is set up for cgroup v1"
        )
    mounted = {p.name for p in cgroup_hierarchies()}
    missing = [c for c in REQUIRED_CONTROLLERS if c not in mounted]
    if missing:
        raise ServerError(f"no cgroup controller {', '.join(missing)} under {CGROUP_ROOT}")
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        raise ServerError("the kernel has no bridge netfilter (br_netfilter); services need it")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise ServerError("the kernel has no overlay filesystem; containerd needs it")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise ClusterExists(
            f"bridge {BRIDGE} exists: a local cluster is already up (polysaga cluster down)"
        )


# --- cgroups --------------------------------------------------------------------------------


def create_cgroup_tree(ledger: Ledger) -> None:
    """/polysaga-cluster in every hierarchy; the kubelet puts pods under it (cgroupRoot),
    Docker its build containers, and the daemons start in .../daemons."""
    ledger.cgroup = CLUSTER_CGROUP
    ledger.save()
    for hierarchy in cgroup_hierarchies():
        for sub in (CLUSTER_CGROUP, f"{CLUSTER_CGROUP}/daemons"):
            path = hierarchy / sub
            path.mkdir(exist_ok=True)
            if hierarchy.name.startswith("cpuset"):
                # A new cpuset has no CPUs or memory nodes until given its parent's.
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    parent = (path.parent / knob).read_text().strip()
                    (path / knob).write_text(parent)


def join_daemons_cgroup(pid: int) -> None:
    for hierarchy in cgroup_hierarchies():
        procs = hierarchy / CLUSTER_CGROUP / "daemons" / "cgroup.procs"
        if procs.exists():
            procs.write_text(str(pid))


def cgroup_pids(cgroup: str) -> set[int]:
    """Every process anywhere in the tree (the pids hierarchy holds them all)."""
    base = CGROUP_ROOT / "pids" / cgroup
    found: set[int] = set()
    if not base.is_dir():
        return found
    for procs in base.rglob("cgroup.procs"):
        try:
            found.update(int(line) for line in procs.read_text().split())
        except OSError:
            continue
    return found


def kill_cgroup(cgroup: str, *, skip: set[int] | None = None, timeout_s: float = 15) -> None:
    """SIGKILL every process in the tree (but ``skip``) until none is left."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = cgroup_pids(cgroup) - (skip or set())
        if not pids:
            return
        if time.monotonic() > deadline:
            raise ServerError(f"processes {sorted(pids)} in cgroup {cgroup} did not die")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_cgroup_tree(cgroup: str) -> None:
    for hierarchy in cgroup_hierarchies():
        base = hierarchy / cgroup
        if not base.is_dir():
            continue
        # Deepest first: a cgroup directory can only go once its children have.
        for path in sorted(
            (p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            _rmdir_cgroup(path)
        _rmdir_cgroup(base)


def _rmdir_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # the last process's exit is still being accounted
    raise ServerError(f"cannot remove cgroup {path}")


# --- mounts -------------------------------------------------------------------------------


def mounts_under(*roots: Path) -> list[str]:
    """Mount points below any of ``roots``, deepest first."""
    prefixes = [str(root.resolve()) for root in roots]
    found: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(*roots: Path) -> None:
    for _ in range(5):
        points = mounts_under(*roots)
        if not points:
            return
        for point in points:
            if run("umount", point, check=False).returncode != 0:
                run("umount", "-l", point, check=False)
    left = mounts_under(*roots)
    if left:
        raise ServerError(f"mounts still in place: {left}")


# --- network ------------------------------------------------------------------------------


def set_sysctl(ledger: Ledger, key: str, value: str) -> None:
    path = Path("/proc/sys") / key.replace(".", "/")
    old = path.read_text().strip()
    if key not in ledger.sysctls:
        ledger.sysctls[key] = old
        ledger.save()
    if old != value:
        path.write_text(value)


def restore_sysctls(ledger: Ledger) -> None:
    for key, old in ledger.sysctls.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        try:
            path.write_text(old)
        except OSError:
            continue


# FORWARD: traffic between the bridge's ports is cluster traffic; anything from the bridge to
# another interface is dropped, so even a pod that set its own route could not get out.
_FORWARD_RULES: list[list[str]] = [
    ["-I", "FORWARD", "1", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP",
     "-m", "comment", "--comment", "polysaga-cluster: no way out"],
    ["-I", "FORWARD", "1", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
     "-m", "comment", "--comment", "polysaga-cluster: pod to pod"],
]  # fmt: skip


def create_network(ledger: Ledger) -> None:
    ledger.bridge = BRIDGE
    ledger.save()
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", pod_gateway_prefix(), "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    # The service range is virtual: route it to the bridge so no address in it can ever take
    # the host's default route (kube-proxy rewrites it before it leaves anyway).
    run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE)
    ledger.routes.append(SERVICE_CIDR)
    ledger.save()
    set_sysctl(ledger, "net.ipv4.ip_forward", "1")
    set_sysctl(ledger, "net.bridge.bridge-nf-call-iptables", "1")
    for rule in _FORWARD_RULES:
        run("iptables", "-w", *rule)
        ledger.iptables.append(["-D", *_without_position(rule[1:])])
        ledger.save()


def _without_position(rule: list[str]) -> list[str]:
    chain, rest = rule[0], rule[1:]
    if rest and rest[0].isdigit():
        rest = rest[1:]
    return [chain, *rest]


def remove_network(ledger: Ledger) -> None:
    for rule in reversed(ledger.iptables):
        run("iptables", "-w", *rule, check=False)
    remove_component_chains()
    if ledger.bridge and Path(f"/sys/class/net/{ledger.bridge}").exists():
        # The pods' host-side veths hang on the bridge; delete them with it.
        for port in Path(f"/sys/class/net/{ledger.bridge}/brif").iterdir():
            run("ip", "link", "del", port.name, check=False)
        run("ip", "link", "del", ledger.bridge, check=False)
    for route in ledger.routes:
        run("ip", "route", "del", route, check=False)
    restore_sysctls(ledger)


# Chains that the kubelet (KUBE-FIREWALL, canaries), kube-proxy (KUBE-SERVICES, …) and the CNI
# firewall and portmap plugins (CNI-*) create: nothing else on this machine makes them.
_COMPONENT_CHAIN_PREFIXES = ("KUBE-", "CNI-")


def remove_component_chains() -> None:
    """Every rule that jumps into one of those chains, then the chains themselves."""
    for table in ("filter", "nat", "mangle"):
        listing = run("iptables", "-w", "-t", table, "-S", check=False).stdout.splitlines()
        chains = [
            line.split()[1]
            for line in listing
            if line.startswith("-N ") and line.split()[1].startswith(_COMPONENT_CHAIN_PREFIXES)
        ]
        for line in listing:
            parts = shlex.split(line)
            jumps_in = "-j" in parts and parts[parts.index("-j") + 1] in chains
            if parts[:1] == ["-A"] and jumps_in and parts[1] not in chains:
                run("iptables", "-w", "-t", table, "-D", *parts[1:], check=False)
        for chain in chains:
            run("iptables", "-w", "-t", table, "-F", chain, check=False)
        for chain in chains:
            run("iptables", "-w", "-t", table, "-X", chain, check=False)


# Paths outside the cluster's directory that its components hard-code: containerd's shim
# sockets, Docker's plugin directory, libcni's result cache, the kubelet's device-plugin
# directory and its /var/log/containers links.
HOST_PATHS = (
    "/run/containerd",
    "/run/docker",
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/log/containers",
)


def record_host_paths(ledger: Ledger) -> None:
    ledger.created_paths = [p for p in HOST_PATHS if not Path(p).exists()]
    ledger.save()


def remove_host_paths(ledger: Ledger, root: Path) -> None:
    """Removes what ``up`` created there: a path that did not exist before goes whole; in one
    that did, only the links into the cluster's directory and its network's CNI results."""
    for raw in HOST_PATHS:
        path = Path(raw)
        if not path.exists():
            continue
        if raw in ledger.created_paths:
            shutil.rmtree(path, ignore_errors=True)
            continue
        for entry in path.rglob("*"):
            into_root = entry.is_symlink() and str(entry.readlink()).startswith(str(root))
            our_result = entry.parent.name == "results" and entry.name.startswith(
                ("polysaga-", "cni-loopback-")
            )
            if into_root or our_result:
                entry.unlink(missing_ok=True)


def pod_network_is_isolated() -> bool:
    """True when the pod range has no route but the bridge (a sanity check for the tests)."""
    routes = run("ip", "route", "show", POD_CIDR).stdout
    return f"dev {BRIDGE}" in routes
