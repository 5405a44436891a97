"""What ``cluster up`` has created, written down as it goes (so ``down``, from another
process or after a Ctrl-C half-way, undoes exactly that): processes by PID, sysctls with the
values they had, iptables rules, the bridge and the cgroup tree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ProcessRecord:
    name: str
    pid: int
    log: str
    # The kernel's start time of the process (clock ticks since boot): a PID reused later by
    # another process has another start time.
    started: int = 0


@dataclass
class Ledger:
    path: Path
    processes: list[ProcessRecord] = field(default_factory=list)
    # sysctl path -> the value it had before ``up`` changed it.
    sysctls: dict[str, str] = field(default_factory=dict)
    # Each rule as iptables arguments after the table: ["-A", "FORWARD", ...].
    iptables: list[list[str]] = field(default_factory=list)
    bridge: str | None = None
    routes: list[str] = field(default_factory=list)
    cgroup: str | None = None
    docker_data_root: str | None = None
    # Host paths that did not exist before ``up`` (host.HOST_PATHS).
    created_paths: list[str] = field(default_factory=list)

    def save(self) -> None:
        body = asdict(self)
        body.pop("path")
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(body, indent=2))
        partial.replace(self.path)

    def add_process(self, name: str, pid: int, log: Path) -> None:
        self.processes.append(ProcessRecord(name, pid, str(log), process_start_time(pid)))
        self.save()

    @classmethod
    def load(cls, path: Path) -> Ledger:
        body = json.loads(path.read_text())
        processes = [ProcessRecord(**record) for record in body.pop("processes", [])]
        return cls(path=path, processes=processes, **body)


def process_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat; 0 when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(") ", 1)[1].split()[19])
