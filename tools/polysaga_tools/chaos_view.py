"""How ``polysaga chaos`` shows its progress: a live terminal view (processes with their
restarts, the load, the faults so far) or, with --json, plain lines on stderr."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from polysaga_tools import faults
from polysaga_tools.stack import LocalStack


class PlainProgress:
    """One line per fault and phase, and the load's figures every 10 s, on stderr."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._last_tick = 0.0

    def _line(self, text: str) -> None:
        print(f"[{time.monotonic() - self._started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def started(self, stack: LocalStack, schedule: list[faults.Fault]) -> None:
        instances = ", ".join(f"{s} x{len(n)}" for s, n in stack.instances.items())
        self._line(f"stack up: {instances}; {len(schedule)} faults scheduled")

    def fault(self, fault: faults.Fault, outcome: str) -> None:
        self._line(f"fault {fault.kind}: {outcome}")

    def phase(self, text: str) -> None:
        self._line(text)

    def tick(self, figures: dict[str, Any]) -> None:
        if time.monotonic() - self._last_tick >= 10:
            self._last_tick = time.monotonic()
            self._line(", ".join(f"{k} {v}" for k, v in figures.items()))


class LiveProgress:
    """A rich live view, redrawn on every event and every second."""

    def __init__(self, console: Console | None = None) -> None:
        self._live = Live(console=console, refresh_per_second=4, transient=False)
        self._stack: LocalStack | None = None
        self._schedule: list[faults.Fault] = []
        self._done: Counter[str] = Counter()
        self._recent: list[str] = []
        self._phase = "starting the stack"
        self._figures: dict[str, Any] = {}

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._live.stop()

    def started(self, stack: LocalStack, schedule: list[faults.Fault]) -> None:
        self._stack, self._schedule = stack, schedule
        self._redraw()

    def fault(self, fault: faults.Fault, outcome: str) -> None:
        self._done[fault.kind] += 1
        self._recent = [*self._recent[-5:], f"{fault.kind}: {outcome}"]
        self._redraw()

    def phase(self, text: str) -> None:
        self._phase = text
        self._redraw()

    def tick(self, figures: dict[str, Any]) -> None:
        self._figures.update(figures)
        self._redraw()

    def _redraw(self) -> None:
        parts: list[Any] = []
        if self._stack is not None:
            processes = Table(title="processes")
            for column in ("process", "pid", "state", "restarts"):
                processes.add_column(column)
            for name, pid in self._stack.state()["processes"].items():
                proc = self._stack.process(name)
                processes.add_row(name, str(pid or "—"), proc.state, str(proc.restarts))
            parts.append(processes)
        kinds = Table(title="faults")
        kinds.add_column("kind")
        kinds.add_column("injected / scheduled", justify="right")
        scheduled = Counter(f.kind for f in self._schedule)
        for kind in faults.FAULT_KINDS:
            kinds.add_row(kind, f"{self._done[kind]} / {scheduled[kind]}")
        figures = Table(title=self._phase)
        figures.add_column("figure")
        figures.add_column("value", justify="right")
        for key, value in self._figures.items():
            figures.add_row(key, str(value))
        parts += [kinds, figures, *self._recent]
        self._live.update(Group(*parts))
