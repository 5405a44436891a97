"""The redelivery backoff of the pull consumer."""

from __future__ import annotations

import pytest

from polysaga.messaging.consumer import ConsumerPolicy


def test_backoff_doubles_from_the_first_delivery() -> None:
    policy = ConsumerPolicy(backoff_s=0.5, backoff_max_s=30.0)

    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    policy = ConsumerPolicy(backoff_s=0.5, backoff_max_s=30.0)

    assert policy.backoff(7) == 30.0  # 0.5 * 2**6 = 32 > 30
    assert policy.backoff(50) == 30.0


@pytest.mark.parametrize("deliveries", [0, -3])
def test_backoff_never_drops_below_the_base(deliveries: int) -> None:
    assert ConsumerPolicy(backoff_s=0.25).backoff(deliveries) == 0.25


def test_backoff_is_a_float_of_seconds() -> None:
    assert isinstance(ConsumerPolicy(backoff_s=1, backoff_max_s=10).backoff(2), float)
