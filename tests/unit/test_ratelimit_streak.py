"""When a provider that keeps rate limiting becomes unavailable, at exact fake-clock instants."""

from __future__ import annotations

import pytest

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit_streak import RateLimitStreak


def make(clock: FakeClock, streak: int = 3, wait: float = 0.0, cap: float = 600.0):
    return RateLimitStreak(streak, wait, cap, clock)


def refuse_after_each_pause(clock: FakeClock, rule: RateLimitStreak, pause: float, n: int):
    """*n* rate-limited answers, each arriving when the previous pause has just ended."""
    reasons = []
    for _ in range(n):
        reasons.append(rule.record_pause(pause, rate_limited=True))
        clock.advance(pause)
    return reasons


def test_the_streak_limit_makes_it_unavailable_for_the_last_pause():
    clock = FakeClock(100.0)
    rule = make(clock, streak=3)
    assert rule.record_pause(20, rate_limited=True) is None  # t=100
    clock.set(120.0)
    assert rule.record_pause(20, rate_limited=True) is None
    assert rule.unavailable_for() == 0.0
    clock.set(140.0)
    assert rule.record_pause(20, rate_limited=True) == "3 rate-limited answers in a row"
    assert rule.unavailable_for() == 20.0
    clock.set(159.999)
    assert rule.unavailable_for() == pytest.approx(0.001)
    clock.set(160.0)
    assert rule.unavailable_for() == 0.0  # the hint has passed: calls flow again


def test_the_total_wait_limit_counts_the_pause_just_asked_for():
    clock = FakeClock()
    rule = make(clock, streak=0, wait=60.0)
    assert refuse_after_each_pause(clock, rule, 20, 2) == [None, None]  # 20 s, 40 s
    assert rule.record_pause(20, rate_limited=True) == "60 s of rate-limit pauses in a row"
    assert (rule.streak, rule.total_wait, rule.unavailable_for()) == (3, 60.0, 20.0)


def test_a_hint_over_max_retry_after_makes_it_unavailable_at_once_for_the_whole_hint():
    clock = FakeClock(10.0)
    rule = make(clock, streak=5, cap=600.0)
    reason = rule.record_pause(86400, rate_limited=True)
    assert reason == "asked to wait 86400 s, over max_retry_after 600 s"
    assert rule.unavailable_for() == 86400.0
    clock.set(10.0 + 86399)
    assert rule.unavailable_for() == 1.0


def test_a_hint_over_max_retry_after_counts_on_a_server_error_too():
    rule = make(FakeClock(), cap=600.0)
    assert rule.record_pause(7200, rate_limited=False) is not None
    assert rule.unavailable_for() == 7200.0


def test_answers_during_a_running_pause_are_not_counted_again():
    # Five requests in flight answered 429 together: one refused pause, not five.
    clock = FakeClock()
    rule = make(clock, streak=3)
    for _ in range(5):
        assert rule.record_pause(20, rate_limited=True) is None
        clock.advance(0.01)
    assert rule.streak == 1
    clock.set(20.03)  # the last of them paused the provider until 20.04
    assert rule.record_pause(20, rate_limited=True) is None
    assert rule.streak == 1
    clock.set(40.03)
    assert rule.record_pause(20, rate_limited=True) is None
    assert rule.streak == 2


def test_one_more_rate_limit_after_the_period_makes_it_unavailable_again_at_once():
    clock = FakeClock()
    rule = make(clock, streak=2)
    assert refuse_after_each_pause(clock, rule, 5, 2) == [None, "2 rate-limited answers in a row"]
    assert rule.unavailable_for() == 0.0  # t=10: period over
    assert rule.record_pause(5, rate_limited=True) == "3 rate-limited answers in a row"
    assert rule.unavailable_for() == 5.0


def test_a_success_ends_the_streak_but_not_a_running_period():
    clock = FakeClock()
    rule = make(clock, streak=2)
    refuse_after_each_pause(clock, rule, 5, 1)
    rule.record_pause(5, rate_limited=True)  # t=5: unavailable until 10
    clock.set(6.0)
    rule.record_success()  # a late answer of a request sent earlier
    assert (rule.streak, rule.total_wait) == (0, 0.0)
    assert rule.unavailable_for() == 4.0
    clock.set(10.0)
    assert rule.record_pause(5, rate_limited=True) is None  # a new streak starts at 1
    assert rule.streak == 1


def test_a_server_error_pause_within_bounds_counts_nothing():
    clock = FakeClock()
    rule = make(clock, streak=1)
    assert rule.record_pause(30, rate_limited=False) is None
    assert (rule.streak, rule.unavailable_for()) == (0, 0.0)


def test_entering_again_while_unavailable_extends_the_period_silently():
    clock = FakeClock()
    rule = make(clock, streak=1)
    assert rule.record_pause(10, rate_limited=True) == "1 rate-limited answers in a row"
    clock.set(2.0)
    assert rule.record_pause(3600, rate_limited=True) is None  # over the cap, already unavailable
    assert rule.unavailable_for() == 3600.0


def test_both_rules_off_leaves_only_the_max_retry_after_rule():
    clock = FakeClock()
    rule = make(clock, streak=0, wait=0.0)
    assert refuse_after_each_pause(clock, rule, 20, 50) == [None] * 50
    assert rule.record_pause(601, rate_limited=True) is not None


@pytest.mark.parametrize(
    "streak, wait, cap", [(-1, 0.0, 600.0), (3, -1.0, 600.0), (3, float("inf"), 600), (3, 0, 0)]
)
def test_invalid_limits_are_refused(streak, wait, cap):
    with pytest.raises(ValueError):
        RateLimitStreak(streak, wait, cap, FakeClock())
