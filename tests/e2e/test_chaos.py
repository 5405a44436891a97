"""``polysaga chaos`` end to end: its own stack with two instances of each consuming
service, load, every kind of fault on a seeded schedule, and every invariant holding."""

from __future__ import annotations

import json
import subprocess
import sys

from polysaga_tools.faults import FAULT_KINDS

# The shortest run that holds one fault of each kind at the schedule's minimum spacing.
DURATION_S = 45


def test_chaos_injects_every_fault_and_every_invariant_holds() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "polysaga_tools",
            "chaos",
            "--duration",
            str(DURATION_S),
            "--seed",
            "7",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    context = json.dumps(report, indent=1)[:6000] + result.stderr[-3000:]
    assert result.returncode == 0, context
    assert set(report["faults"]) == set(FAULT_KINDS)
    assert all(n >= 1 for n in report["faults"].values()), context
    assert report["orders"] > 0 and report["confirmed"] > 0 and report["cancelled"] > 0
    assert report["lost"] == 0 and report["duplicated_effects"] == 0, context
    assert report["duplicate_deliveries"] > 0  # the copies were in the streams, and harmless
    assert all(report["invariants"].values()), context
    assert {
        "every_saga_ended",
        "no_oversell",
        "stock_conserved",
        "money_conserved",
        "no_double_charge",
        "cancelled_orders_compensated",
        "orchestrated_sagas_agree",
        "read_model_converged",
        "no_lost_event",
        "no_duplicated_effect",
        "outbox_drained",
        "consumers_drained",
    } <= set(report["invariants"])
    # Both saga styles ran on the one stack, through the same faults.
    styles = report["saga_styles"]
    assert set(styles) == {"choreography", "orchestration"}, context
    assert all(s["confirmed"] > 0 and s["cancelled"] > 0 for s in styles.values()), context


def test_chaos_refuses_a_run_too_short_for_every_fault() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "polysaga_tools", "chaos", "--duration", "10", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "too short" in result.stderr and result.stdout == ""
