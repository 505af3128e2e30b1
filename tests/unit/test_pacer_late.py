"""The pacer hands its timer's due instant to the bucket: a late timer is credited, a stall is
not a burst, and the lateness is counted.

Driven by Twisted's ``task.Clock``: each timer is made to fire a set time after the instant it
was armed for, as a busy event loop does.
"""

import pytest
from twisted.internet.task import Clock

from scrapy_apigw.core.ratelimit import SlidingWindowLog, TokenBucket
from scrapy_apigw.pacer import Pacer


def make(credit=0.5, window=None, rate=10.0):
    clock = Clock()
    bucket = TokenBucket(rate, 1, clock.seconds, late_credit=credit)
    log = SlidingWindowLog(window[0], window[1], clock.seconds) if window else None
    return clock, Pacer(bucket, log, reactor=clock)


def run_late(clock, until, late):
    """Fire each armed timer *late* seconds after its time, up to *until* seconds."""
    while calls := [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= until]:
        clock.advance(max(0.0, min(calls) + late - clock.seconds()))


def released(clock, pacer, n, until, late):
    times = []
    for _ in range(n):
        pacer.turn().addCallback(lambda _: times.append(round(clock.seconds(), 6)))
    run_late(clock, until, late)
    return times


def test_timers_30_ms_late_keep_the_rate_with_credit():
    clock, pacer = make()
    assert released(clock, pacer, 5, until=1.0, late=0.03) == [0.0, 0.13, 0.23, 0.33, 0.43]


def test_timers_30_ms_late_lose_30_ms_per_send_without_credit():
    clock, pacer = make(credit=0.0)
    assert released(clock, pacer, 5, until=2.0, late=0.03) == [0.0, 0.13, 0.26, 0.39, 0.52]


def test_lateness_beyond_the_credit_is_lost_only_beyond_it():
    # 80 ms late, 50 ms credited: each send 30 ms after the schedule of the one before.
    clock, pacer = make()
    assert released(clock, pacer, 4, until=1.0, late=0.08) == [0.0, 0.18, 0.31, 0.44]


def test_a_stall_with_credit_releases_one_then_half_an_interval_later_the_next():
    clock, pacer = make()
    times = []
    for _ in range(5):
        pacer.turn().addCallback(lambda _: times.append(round(clock.seconds(), 6)))
    clock.advance(2.0)  # one late timer call after a 1.9 s stall
    assert times == [0.0, 2.0]
    run_late(clock, until=3.0, late=0.0)
    assert times[2:] == [2.05, 2.15, 2.25]


def test_the_lateness_of_each_release_is_counted():
    clock, pacer = make()
    released(clock, pacer, 5, until=1.0, late=0.03)
    assert pacer.lateness.releases == 4
    assert pacer.lateness.total == pytest.approx(0.12)
    assert pacer.lateness.worst == pytest.approx(0.03)


def test_the_window_still_counts_actual_releases():
    # 2 per 1 s window: the third waits for the first to leave at 1.0 and fires 30 ms late;
    # the fourth waits for the second (0.13) to leave: 1.13, fired at 1.16. The window log holds
    # the actual instants, so no window of 1 s ever has a third send.
    clock, pacer = make(window=(2, 1.0))
    times = released(clock, pacer, 5, until=3.0, late=0.03)
    assert times == [0.0, 0.13, 1.03, 1.16, 2.06]
    assert all(b - a >= 1.0 for a, b in zip(times, times[2:], strict=False))
