"""The FIFO pacer releases requests at exact instants and never in a burst after a stall.

Driven by Twisted's ``task.Clock`` (a fake reactor clock): no sleeping, exact times.
"""

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock

from scrapy_apigw.core.ratelimit import SlidingWindowLog, TokenBucket
from scrapy_apigw.pacer import Pacer


def make(rate=10.0, burst=1, window=None):
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock.seconds)
    log = SlidingWindowLog(window[0], window[1], clock.seconds) if window else None
    return clock, bucket, Pacer(bucket, log, reactor=clock)


def run_timers(clock, until):
    """Advance the fake clock exactly to each armed timer, up to *until* seconds."""
    while calls := [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= until]:
        clock.advance(max(0.0, min(calls) - clock.seconds()))


def release_times(clock, pacer, n, until):
    released = []
    for i in range(n):
        pacer.turn().addCallback(lambda _, i=i: released.append((i, round(clock.seconds(), 6))))
    run_timers(clock, until)
    return released


def test_waiters_are_released_in_order_at_exact_spacing():
    clock, _, pacer = make(rate=10, burst=1)
    released = release_times(clock, pacer, 5, until=1.0)
    assert released == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]


def test_burst_goes_at_once_then_the_rate():
    clock, _, pacer = make(rate=10, burst=3)
    released = release_times(clock, pacer, 5, until=1.0)
    assert [t for _, t in released] == [0.0, 0.0, 0.0, 0.1, 0.2]


def test_a_stall_releases_at_most_the_burst_at_once():
    # Reserve-then-sleep would release all five at t=2 after a 2 s stall of the reactor.
    clock, _, pacer = make(rate=10, burst=1)
    released = []
    for i in range(5):
        pacer.turn().addCallback(lambda _, i=i: released.append((i, round(clock.seconds(), 6))))
    assert released == [(0, 0.0)]
    clock.advance(2.0)  # one late timer call, as after a long callback
    assert released == [(0, 0.0), (1, 2.0)]
    run_timers(clock, until=3.0)
    assert released[2:] == [(2, 2.1), (3, 2.2), (4, 2.3)]


def test_a_pause_holds_the_gate_until_it_ends():
    clock, bucket, pacer = make(rate=10, burst=5)
    bucket.block_until(3.0)
    released = release_times(clock, pacer, 3, until=4.0)
    assert [t for _, t in released] == [3.0, 3.1, 3.2]


def test_the_window_quota_holds_requests_until_the_oldest_leaves():
    clock, _, pacer = make(rate=100, burst=10, window=(3, 1.0))
    released = release_times(clock, pacer, 5, until=2.5)
    assert [t for _, t in released] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_a_cancelled_waiter_gives_its_place_and_token_up():
    clock, _, pacer = make(rate=10, burst=1)
    first, second, third = pacer.turn(), pacer.turn(), pacer.turn()
    second.addErrback(lambda f: f.trap(CancelledError))
    second.cancel()
    clock.advance(0.1)
    assert first.called and third.called
    assert round(clock.seconds(), 3) == 0.1


def test_waiting_says_whether_a_waiter_is_queued_behind_the_released_ones():
    clock, _, pacer = make(rate=10, burst=1)
    first, second = pacer.turn(), pacer.turn()
    assert first.called and not second.called
    assert pacer.waiting
    second.cancel()
    assert not pacer.waiting  # a cancelled waiter sends nothing
    third = pacer.turn()
    assert pacer.waiting
    run_timers(clock, until=1.0)
    assert third.called and not pacer.waiting
