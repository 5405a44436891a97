"""The benchmark's pure parts: the open-loop schedule, raw-sample quantiles, the
sustainable-rate criterion and ramp, the bound arithmetic from measured costs, CPU per saga
and the hop quantiles."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from polysaga_tools.bench_cpu import BENCH_PROCESS, cpu_seconds, per_saga_ms
from polysaga_tools.bench_probes import MetricsSnapshot
from polysaga_tools.limits import MachineLimits, SagaCosts, saga_bound
from polysaga_tools.nats_sync import with_sync_setting
from polysaga_tools.open_loop import arrival_offsets
from polysaga_tools.quantiles import quantile
from polysaga_tools.sustainable import Criterion, StepOutcome, next_rate, verdict

INF = float("inf")


def test_arrivals_are_exactly_rate_times_duration_evenly_spaced() -> None:
    offsets = arrival_offsets(100, 5)
    assert len(offsets) == 500
    assert offsets[0] == 0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.01}
    assert offsets[-1] < 5


def test_arrivals_depend_on_nothing_but_rate_and_duration() -> None:
    # Open loop: the schedule is fixed up front, so nothing a response does can move it.
    assert arrival_offsets(250, 2) == arrival_offsets(250, 2)
    assert len(arrival_offsets(7.5, 2)) == 15


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-1, 1), (10, 0)])
def test_arrivals_refuse_a_meaningless_schedule(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        arrival_offsets(rate, duration)


def test_quantiles_interpolate_between_ranks() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert quantile(samples, 0.5) == pytest.approx(50.5)
    assert quantile(samples, 0.99) == pytest.approx(99.01)
    assert quantile(samples, 0.0) == 1
    assert quantile(samples, 1.0) == 100
    assert quantile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError, match="no samples"):
        quantile([], 0.5)


def _step(**changes: object) -> StepOutcome:
    base: dict[str, object] = {
        "rate_per_s": 100.0,
        "duration_s": 10.0,
        "sent": 1000,
        "failed": 0,
        "ended_in_grace": 1000,
        "p99_latency_ms": 200.0,
        "backlog_after_grace": {"order-view/ORDERS": 0, "payment/INVENTORY": 3},
        "events_per_saga": 2,
    }
    return StepOutcome(**{**base, **changes})  # type: ignore[arg-type]


def test_a_step_that_keeps_up_is_sustainable() -> None:
    assert verdict(_step()) == (True, "sustainable")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sent": 900}, "generator sent"),
        ({"failed": 10}, "requests failed"),
        ({"ended_in_grace": 990}, "still running"),
        ({"p99_latency_ms": 1500.0}, "p99 saga latency"),
        ({"p99_latency_ms": None}, "p99 saga latency"),
        ({"backlog_after_grace": {"order-view/ORDERS": 101}}, "order-view/ORDERS"),
    ],
)
def test_each_part_of_the_criterion_can_fail_a_step(
    changes: dict[str, object], reason: str
) -> None:
    ok, why = verdict(_step(**changes))
    assert not ok
    assert reason in why


def test_a_schedule_of_a_fractional_number_of_orders_is_judged_by_what_it_holds() -> None:
    # 3.9/s for 3 s is 11.7 orders: the schedule holds 11, and sending all 11 kept it.
    assert verdict(_step(rate_per_s=3.9, duration_s=3.0, sent=11, ended_in_grace=11))[0]
    assert not verdict(_step(rate_per_s=3.9, duration_s=3.0, sent=10, ended_in_grace=10))[0]


def test_the_backlog_budget_is_half_a_second_of_events() -> None:
    # 100 sagas/s x 2 events per saga x 0.5 s = 100 messages.
    assert verdict(_step(backlog_after_grace={"v/ORDERS": 100}))[0]
    assert not verdict(_step(backlog_after_grace={"v/ORDERS": 101}))[0]
    assert verdict(_step(backlog_after_grace={"v/ORDERS": 101}), Criterion(max_backlog_s=1))[0]
    slow = {"rate_per_s": 2.0, "sent": 20, "ended_in_grace": 20}
    assert verdict(_step(**slow, backlog_after_grace={"v/ORDERS": 10}))[0]  # the floor
    assert not verdict(_step(**slow, backlog_after_grace={"v/ORDERS": 11}))[0]


def test_the_ramp_grows_shrinks_then_bisects() -> None:
    assert next_rate({}, 100) == 100
    assert next_rate({100: True}, 100) == 150
    assert next_rate({100: True, 150: True}, 100) == 225
    assert next_rate({100: True, 150: False}, 100) == 125
    assert next_rate({100: True, 150: False, 125: True}, 100) == 137.5
    assert next_rate({100: True, 150: False, 125: True, 137.5: True}, 100) is None  # < 15 %
    assert next_rate({100: False}, 100) == 44.4
    assert next_rate({100: False, 44.4: False}, 100) == 19.7
    assert next_rate({100: False, 44.4: True}, 100) == 72.2
    assert next_rate({2.0: False}, 100) is None  # below 1 saga/s: give up


def test_the_bound_divides_each_measured_limit_by_what_one_saga_was_measured_to_cost() -> None:
    # The commit limit is of writing commits: read-only transactions (20 - 8 here) flush
    # nothing and do not count against it.
    limits = MachineLimits(
        jetstream_publishes_per_s=20_000.0,
        postgres_commits_per_s=12_000.0,
        mongo_writes_per_s=600.0,
        mongo_writes_per_s_4_connections=900.0,
    )
    costs = SagaCosts(
        commits=20.0, write_transactions=8.0, relay_commits=1.5, publishes=5.0, view_writes=2.0
    )
    bound = saga_bound(costs, limits)
    assert (bound.by_commits, bound.by_publishes, bound.by_view_writes) == (1500.0, 4000.0, 300.0)
    assert bound.sagas_per_s == 300.0
    assert bound.limited_by == "mongo_writes"
    assert "= 300.0 sagas/s" in bound.arithmetic(costs, limits)
    # A resource a saga did not use at all does not bound it.
    free = saga_bound(SagaCosts(20.0, 8.0, 1.5, 5.0, 0.0), limits)
    assert free.by_view_writes == float("inf") and free.limited_by == "postgres_commits"


def test_cpu_per_saga_is_the_difference_of_two_readings_over_the_sagas() -> None:
    before = {"order": 10.0, "postgres": 50.0, "restarted": 9.0}
    after = {"order": 12.5, "postgres": 51.0, "restarted": 0.5, "new": 3.0}
    assert per_saga_ms(before, after, 500) == {"order": 5.0, "postgres": 2.0}
    assert per_saga_ms(before, after, 0) == {}


BURN = "import time\nwhile time.process_time() < 0.5: pass"


def test_the_bench_is_charged_its_own_cpu_and_not_its_childrens() -> None:
    # The stack the bench starts runs as its children: each is counted under its own name,
    # so the bench's figure must not count them again.
    before = cpu_seconds({})
    child = subprocess.run([sys.executable, "-c", BURN], check=True, timeout=120)
    assert child.returncode == 0
    after = cpu_seconds({})
    assert after[BENCH_PROCESS] - before[BENCH_PROCESS] < 0.3


def test_hop_quantiles_come_from_the_difference_of_two_snapshots() -> None:
    before = MetricsSnapshot(
        {
            "inventory": {"created_to_published": [(0.001, 5.0), (0.01, 10.0), (INF, 10.0)]},
            "payment": {"created_to_published": [(0.001, 0.0), (0.01, 0.0), (INF, 0.0)]},
        },
        {"polysaga_outbox_relay_commits_total": 3.0},
    )
    after = MetricsSnapshot(
        {
            "inventory": {"created_to_published": [(0.001, 5.0), (0.01, 60.0), (INF, 60.0)]},
            "payment": {"created_to_published": [(0.001, 0.0), (0.01, 50.0), (INF, 50.0)]},
        },
        {"polysaga_outbox_relay_commits_total": 10.0},
    )
    measured = after.since(before)
    assert measured.counters == {"polysaga_outbox_relay_commits_total": 7.0}
    hops = measured.hop_quantiles_ms()
    # All 100 new observations (50 + 50) fell between 1 and 10 ms: the median is 5.5 ms.
    assert hops["created_to_published"] == {"p50": 5.5, "p99": 9.91}
    assert hops["published_to_delivered"] == {"p50": None, "p99": None}
    by_service = measured.hop_quantiles_ms_by_service()
    assert set(by_service) == {"inventory", "payment"}
    assert by_service["payment"]["created_to_published"] == {"p50": 5.5, "p99": 9.91}


def test_the_sync_setting_is_added_to_and_removed_from_the_jetstream_block() -> None:
    config = 'listen: 127.0.0.1:4222\njetstream {\n  store_dir: "/data/js"\n}\n'
    synced = with_sync_setting(config, sync_always=True)
    assert synced == (
        'listen: 127.0.0.1:4222\njetstream {\n  store_dir: "/data/js"\n  sync_interval: always\n}\n'
    )
    assert with_sync_setting(synced, sync_always=True) == synced  # never twice
    assert with_sync_setting(synced, sync_always=False) == config
