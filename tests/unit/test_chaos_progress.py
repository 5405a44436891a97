"""The chaos progress displays: the live view shows processes, every fault kind with its
count, and the figures; the plain lines go to stderr, never to stdout (which --json owns)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from polysaga_tools.chaos_view import LiveProgress, PlainProgress
from polysaga_tools.faults import FAULT_KINDS, KILL_NATS, Fault
from polysaga_tools.stack import LocalStack


def stack(tmp_path: Path) -> LocalStack:
    return LocalStack(tmp_path, tmp_path / "stack.json", replicas={"order": 2})


def test_the_live_view_shows_every_kind_and_the_figures(tmp_path: Path) -> None:
    console = Console(record=True, width=140, force_terminal=False)
    schedule = [Fault(1.0, KILL_NATS), Fault(5.0, KILL_NATS)]
    with LiveProgress(console) as live:
        live.started(stack(tmp_path), schedule)
        live.fault(schedule[0], "SIGKILL nats (pid 1), restarted")
        live.phase("waiting for quiescence")
        live.tick({"pending sagas": 3})
    text = console.export_text()
    for kind in FAULT_KINDS:
        assert kind in text
    assert "1 / 2" in text and "waiting for quiescence" in text and "pending sagas" in text


def test_plain_progress_writes_lines_to_stderr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = PlainProgress()
    progress.started(stack(tmp_path), [Fault(1.0, KILL_NATS)])
    progress.fault(Fault(1.0, KILL_NATS), "SIGKILL nats (pid 1), restarted")
    out, err = capsys.readouterr()
    assert out == ""
    assert "order x2" in err and "fault kill_nats: SIGKILL nats" in err
