"""The local parts of an admin reset, at a fake clock: a pause ended early, a forgotten
rate-limit streak, the adaptive rate back to the configured one, a breaker's last failure."""

from __future__ import annotations

from scrapy_apigw.core.adaptive import AdaptiveRate, AimdConfig
from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit import TokenBucket
from scrapy_apigw.core.ratelimit_streak import RateLimitStreak


def test_ending_a_pause_gives_one_token_now_and_refills_from_there() -> None:
    clock = FakeClock(100.0)
    bucket = TokenBucket(rate=2.0, burst=4, clock=clock)
    bucket.block_until(160.0)
    clock.advance(10.0)
    assert bucket.time_until() == 50.0
    bucket.end_pause()
    assert bucket.blocked_until == 110.0 and bucket.try_acquire()
    assert bucket.time_until() == 0.5
    bucket.end_pause()  # not paused: nothing changes
    assert bucket.time_until() == 0.5


def test_a_reset_streak_forgets_the_unavailable_period() -> None:
    clock = FakeClock()
    streak = RateLimitStreak(1, 60.0, 30.0, clock)
    assert streak.record_pause(40.0, rate_limited=True) is not None
    assert streak.unavailable_for() == 40.0
    streak.reset()
    assert (streak.unavailable_for(), streak.streak, streak.total_wait) == (0.0, 0, 0.0)


def test_a_reset_adaptive_rate_is_the_configured_one() -> None:
    clock = FakeClock()
    adaptive = AdaptiveRate(AimdConfig(rate=4.0, burst=4), clock)
    assert adaptive.rate_limited()
    assert adaptive.rate < 4.0
    adaptive.reset()
    assert (adaptive.rate, adaptive.burst) == (4.0, 4)


def test_the_breaker_remembers_its_last_failure_and_a_reset_closes_it() -> None:
    clock = FakeClock(5.0)
    breaker = CircuitBreaker(2, 30.0, 1, clock)
    assert breaker.last_failure is None and breaker.thresholds == (2, 30.0, 1)
    breaker.record_failure()
    clock.advance(1.5)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.last_failure == 6.5
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED and breaker.failure_count == 0
