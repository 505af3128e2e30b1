"""Token bucket, sliding-window log and quota headers, driven by a fake clock at exact instants."""

from __future__ import annotations

import bisect
import random
from typing import Any

import pytest

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit import (
    Quota,
    SlidingWindowLog,
    TokenBucket,
    parse_quota_headers,
)

# --- TokenBucket -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(10.0, 20), (1.0, 1), (2.5, 3), (3.0, 1), (0.5, 5)],
)
def test_bucket_grants_burst_at_once_then_queues_reservers_at_exact_one_over_rate(
    rate: float, burst: int
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock)
    waits = [bucket.reserve() for _ in range(burst + 30)]
    assert waits[:burst] == [0.0] * burst
    assert waits[burst:] == [k / rate for k in range(1, 31)]
    assert bucket.tokens == -30.0


def test_bucket_matches_aiolimiter_pending_table() -> None:
    # aiolimiter's test: AsyncLimiter(5, 10) with 10 tasks -> pending 5, 4, 2, 0 at t = 0, 3, 7, 11.
    clock = FakeClock()
    bucket = TokenBucket(rate=5 / 10, burst=5, clock=clock)
    send_at = [clock() + bucket.reserve() for _ in range(10)]
    assert send_at == [0.0] * 5 + [2.0, 4.0, 6.0, 8.0, 10.0]
    for t, pending in [(0.0, 5), (3.0, 4), (7.0, 2), (11.0, 0)]:
        assert sum(1 for s in send_at if s > t) == pending, t


def test_bucket_has_no_drift_over_a_long_run_of_waking_reservers() -> None:
    # A worker that reserves, sleeps its wait, then reserves again: 3000 sends at 3 req/s must
    # land on k/3 and end at exactly 1000 s (summing 1/3 would drift).
    clock = FakeClock()
    bucket = TokenBucket(rate=3.0, burst=1, clock=clock)
    sends = []
    for _ in range(3001):
        wait = bucket.reserve()
        clock.advance(wait)
        sends.append(clock())
    assert sends[0] == 0.0
    assert all(abs(s - k / 3) < 1e-9 for k, s in enumerate(sends))
    assert sends[-1] == pytest.approx(1000.0, abs=1e-9)


def test_bucket_queue_of_many_reservers_has_no_drift() -> None:
    clock = FakeClock(500.0)
    bucket = TokenBucket(rate=10.0, burst=1, clock=clock)
    waits = [bucket.reserve() for _ in range(10_001)]
    assert waits[10_000] == 1000.0
    assert waits[1234] == 123.4


def test_bucket_refill_stops_at_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock)
    assert [bucket.try_acquire() for _ in range(5)] == [True] * 5
    clock.advance(100.0)  # would be 1000 tokens without the cap
    assert bucket.tokens == 5.0
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]


def test_bucket_refills_continuously_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    assert bucket.try_acquire(5)
    for t, level in [(0.0, 0.0), (0.25, 0.5), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0), (9.0, 5.0)]:
        clock.set(t)
        assert bucket.tokens == level, t


def test_bucket_reserve_takes_several_tokens_and_waits_for_all() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=5, clock=clock)
    assert bucket.reserve(5) == 0.0
    assert bucket.reserve(2) == 2.0
    assert bucket.reserve(3) == 5.0


def test_try_acquire_never_goes_into_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire()
    assert bucket.tokens == 0.0  # a refusal takes nothing
    assert not bucket.try_acquire(3)  # more than the bucket can ever hold
    clock.advance(0.999)
    assert not bucket.try_acquire()
    clock.advance(0.001)
    assert bucket.try_acquire()


def test_a_caller_polling_every_one_over_rate_always_finds_its_token() -> None:
    # 5.3 + 0.1 - 5.3 != 0.1 in floats: the level must still reach the whole token on time.
    clock = FakeClock(5.3)
    bucket = TokenBucket(rate=10.0, burst=1, clock=clock)
    for _ in range(1000):
        assert bucket.try_acquire()
        assert not bucket.try_acquire()
        clock.advance(0.1)


def test_try_acquire_waits_behind_reservations_in_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 1.0  # queued: owns the token of t=1
    clock.set(1.0)
    assert not bucket.try_acquire()
    clock.set(2.0)
    assert bucket.try_acquire()


def test_block_until_gives_nothing_before_t_one_token_at_t_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=4, clock=clock)  # full: 4 tokens
    bucket.block_until(10.0)
    assert bucket.blocked_until == 10.0
    for t in (0.0, 5.0, 9.999):
        clock.set(t)
        assert not bucket.try_acquire(), t
    clock.set(10.0)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()  # no burst right after the pause
    clock.set(10.499)
    assert not bucket.try_acquire()
    clock.set(10.5)
    assert bucket.try_acquire()
    clock.set(20.0)
    assert bucket.tokens == 4.0  # refill continues up to the burst


def test_reservers_during_a_pause_are_queued_from_its_end_at_rate() -> None:
    clock = FakeClock(3.0)
    bucket = TokenBucket(rate=2.0, burst=4, clock=clock)
    bucket.block_until(10.0)
    assert [bucket.reserve() for _ in range(3)] == [7.0, 7.5, 8.0]


def test_block_until_keeps_the_later_pause_and_counts_pauses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    bucket.block_until(10.0)
    bucket.block_until(5.0)
    bucket.block_until(10.0)
    assert (bucket.blocked_until, bucket.pauses) == (10.0, 1)
    clock.set(9.0)
    assert not bucket.try_acquire()
    bucket.block_until(12.0)
    assert (bucket.blocked_until, bucket.pauses) == (12.0, 2)
    clock.set(11.999)
    assert not bucket.try_acquire()
    clock.set(12.0)
    assert bucket.try_acquire()


def test_block_until_voids_earlier_reservations() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    for _ in range(10):
        bucket.reserve()  # debt of 9 tokens: the queue runs to t=9
    bucket.block_until(3.0)
    clock.set(3.0)
    assert bucket.tokens == 1.0  # the queue is gone; the woken callers reserve again
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 1.0


def test_block_until_in_the_past_pauses_until_now_with_one_token() -> None:
    clock = FakeClock(50.0)
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    bucket.block_until(40.0)  # e.g. a Retry-After date already past: still "too fast"
    assert (bucket.blocked_until, bucket.pauses) == (50.0, 1)
    assert bucket.tokens == 1.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 1.0


def test_set_rate_keeps_the_current_level_and_changes_the_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    assert bucket.try_acquire(10)
    clock.set(1.0)
    bucket.set_rate(4.0)
    assert (bucket.rate, bucket.tokens) == (4.0, 1.0)
    clock.set(1.25)
    assert bucket.tokens == 2.0


def test_set_rate_during_a_pause_keeps_one_token_at_the_pause_end() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    bucket.block_until(10.0)
    bucket.set_rate(4.0)
    clock.set(10.0)
    assert bucket.tokens == 1.0
    clock.set(10.5)
    assert bucket.tokens == 3.0


def test_set_burst_caps_the_level_and_a_larger_bucket_fills_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=10, clock=clock)
    bucket.set_burst(4)  # full bucket of 10: keeps 4
    assert (bucket.burst, bucket.tokens) == (4, 4.0)
    assert [bucket.try_acquire() for _ in range(5)] == [True] * 4 + [False]
    bucket.set_burst(6)  # empty: refills at 2/s up to the new 6
    clock.set(1.0)
    assert bucket.tokens == 2.0
    clock.set(10.0)
    assert bucket.tokens == 6.0


def test_bucket_records_until_when_its_sends_are_ahead_of_the_paced_schedule() -> None:
    # Burst 4 at 2 tokens/s: the first take at 10.0 leaves 3 tokens, 2 s ahead of a sender
    # paced from 10.0 (its 4 sends would go at 10.0, 10.5, 11.0, 11.5; the 5th at 12.0).
    clock = FakeClock(10.0)
    bucket = TokenBucket(2.0, 4, clock)
    assert (bucket.taken, bucket.ahead_until) == (0, float("-inf"))
    assert bucket.try_acquire()
    assert (bucket.taken, bucket.ahead_until) == (1, 12.0)
    assert bucket.try_acquire() and bucket.try_acquire() and bucket.try_acquire()
    assert bucket.tokens == 0.0
    clock.set(10.5)  # paced takes leave 0 tokens: not ahead
    assert bucket.try_acquire()
    clock.set(11.0)
    assert bucket.reserve() == 0.0
    assert (bucket.taken, bucket.ahead_until) == (6, 12.0)
    clock.set(14.0)  # idle 3 s: 4 tokens again; the next take leaves 3, ahead until 16.0
    assert bucket.reserve() == 0.0
    assert (bucket.taken, bucket.ahead_until) == (7, 16.0)


def test_a_burst_one_bucket_never_sends_ahead() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(1.0, 1, clock)
    for t in (0.0, 1.0, 5.0, 5.5):
        clock.set(t)
        bucket.reserve()
    assert (bucket.taken, bucket.ahead_until) == (4, float("-inf"))


def test_set_burst_larger_fills_from_the_level_now_not_from_the_last_read() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=4, clock=clock)
    assert bucket.tokens == 4.0  # full since t=0
    clock.set(10.0)
    bucket.set_burst(8)
    assert bucket.tokens == 4.0  # a full bucket gained nothing while it was full
    clock.set(12.0)
    assert bucket.tokens == 6.0


def test_set_burst_keeps_debt_and_queued_reservations() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=4, clock=clock)
    assert [bucket.reserve() for _ in range(6)] == [0.0] * 4 + [1.0, 2.0]
    bucket.set_burst(1)
    assert bucket.tokens == -2.0
    assert bucket.reserve() == 3.0


def test_set_burst_during_a_pause_keeps_one_token_at_the_pause_end() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    bucket.block_until(10.0)
    bucket.set_burst(2)
    clock.set(10.0)
    assert bucket.tokens == 1.0
    clock.set(20.0)
    assert bucket.tokens == 2.0


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (TokenBucket, (0.0, 1)),
        (TokenBucket, (-1.0, 1)),
        (TokenBucket, (float("nan"), 1)),
        (TokenBucket, (float("inf"), 1)),
        (TokenBucket, (1.0, 0)),
        (lambda: TokenBucket(1.0, 2).reserve(0), ()),
        (lambda: TokenBucket(1.0, 2).reserve(3), ()),
        (lambda: TokenBucket(1.0, 2).try_acquire(0), ()),
        (lambda: TokenBucket(1.0, 2).set_rate(0.0), ()),
        (lambda: TokenBucket(1.0, 2).set_burst(0), ()),
        (SlidingWindowLog, (0, 60.0)),
        (SlidingWindowLog, (1, 0.0)),
        (lambda: SlidingWindowLog(1, 1.0).set_limit(0), ()),
    ],
)
def test_invalid_limiter_arguments_raise_value_error(call: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        call(*args)


# --- SlidingWindowLog ------------------------------------------------------------------------


def test_window_admits_limit_at_once_then_queues_fifo_by_window() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=3, window=10.0, clock=clock)
    assert [log.reserve() for _ in range(7)] == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


def test_window_allows_the_next_send_exactly_when_the_oldest_leaves() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=2, window=60.0, clock=clock)
    assert log.reserve() == 0.0
    clock.set(30.0)
    assert log.reserve() == 0.0
    clock.set(59.999)
    assert log.reserve() == pytest.approx(0.001, abs=1e-9)  # sent at 60.0
    clock.set(100.0)
    assert log.reserve() == 0.0  # window (40, 100] holds only the send at 60


def test_window_count_reports_sends_of_the_last_window_only() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=3, window=10.0, clock=clock)
    for _ in range(4):
        log.reserve()  # three at t=0, one scheduled at t=10
    assert log.count() == 3
    clock.set(9.999)
    assert log.count() == 3
    clock.set(10.0)
    assert log.count() == 1  # the t=0 sends left; the t=10 one is made
    clock.set(20.0)
    assert log.count() == 0


def test_window_set_limit_raises_or_lowers_the_quota_from_now() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=3, window=10.0, clock=clock)
    assert [log.reserve() for _ in range(3)] == [0.0] * 3
    log.set_limit(5)
    assert [log.reserve() for _ in range(3)] == [0.0, 0.0, 10.0]
    log.set_limit(2)  # Discogs lowered X-Discogs-Ratelimit: two per window from now on
    assert log.limit == 2
    assert [log.reserve() for _ in range(3)] == [10.0, 20.0, 20.0]


def test_window_raised_limit_still_serves_queued_reservers_first() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=2, window=10.0, clock=clock)
    assert [log.reserve() for _ in range(3)] == [0.0, 0.0, 10.0]
    log.set_limit(5)
    assert log.reserve() == 10.0  # FIFO: not ahead of the caller already waiting for t=10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_never_exceeds_limit_in_any_window_over_a_long_random_run(seed: int) -> None:
    rng = random.Random(seed)
    limit, window = 7, 5.0
    clock = FakeClock()
    log = SlidingWindowLog(limit, window, clock)
    arrivals: list[float] = []
    sends: list[float] = []
    for _ in range(5000):
        # Bursty arrivals averaging 1.2 sends/s against a 1.4/s quota: busy and idle spells.
        clock.advance(rng.expovariate(0.6))
        now = clock()
        assert log.count() == bisect.bisect_right(sends, now) - bisect.bisect_right(
            sends, now - window
        )
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            arrivals.append(now)
            sends.append(now + log.reserve())
    # At most `limit` sends in any half-open window [s, s + window).
    assert all(sends[i] - sends[i - limit] >= window - 1e-9 for i in range(limit, len(sends)))
    # FIFO, and no slower than needed: each send goes at the earliest instant the window allows.
    for i, (arrival, send) in enumerate(zip(arrivals, sends, strict=True)):
        earliest = max(
            arrival,
            sends[i - 1] if i else arrival,
            sends[i - limit] + window if i >= limit else arrival,
        )
        assert send == pytest.approx(earliest, abs=1e-9), i
    assert max(s - a for a, s in zip(arrivals, sends, strict=True)) > window  # it did throttle
    assert len(log._log) <= limit  # memory bounded by the limit (white-box check)


def test_window_counts_an_answered_send_until_its_answer_leaves_the_window() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=2, window=10.0, clock=clock)
    assert log.reserve() == 0.0  # A, reserved at 0
    clock.set(1.0)
    assert log.reserve() == 0.0  # B, reserved at 1
    clock.set(3.0)
    log.settle()  # A answered at 3: it may have reached the provider as late as 3
    clock.set(5.0)
    assert log.time_until() == 6.0  # B leaves at 11 first; A's reservation alone: 5.0
    assert log.count() == 2
    clock.set(11.0)
    assert log.reserve() == 0.0  # C at 11: B left, A (answered at 3) still counts
    clock.set(12.0)
    assert log.time_until() == 1.0  # A leaves at 13
    assert log.count() == 2


def test_window_settle_without_an_unsettled_send_changes_nothing() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=1, window=10.0, clock=clock)
    log.settle()  # nothing reserved
    assert log.reserve() == 0.0
    clock.set(2.0)
    log.settle()
    clock.set(4.0)
    log.settle()  # a second answer for the one send: ignored
    assert log.time_until() == 8.0  # counted until 2 + 10, not 4 + 10


def test_window_settles_the_oldest_send_whichever_answer_comes_first() -> None:
    clock = FakeClock()
    log = SlidingWindowLog(limit=2, window=10.0, clock=clock)
    assert [log.reserve(), log.reserve()] == [0.0, 0.0]
    clock.set(1.0)
    log.settle()  # one of the two answered at 1; the other is still on its way
    assert log.time_until() == 9.0  # the unsettled one counts from 0: free at 10
    clock.set(7.0)
    log.settle()
    clock.set(10.0)
    assert log.reserve() == 1.0  # counted until 11 and 17: the first leaves at 11


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_keeps_the_providers_count_of_arrivals_within_the_limit_whatever_the_delays(
    seed: int,
) -> None:
    # The provider counts arrivals; each request arrives some time after its send (up to 40 %
    # of the window here: a stalled event loop, a slow connection) and before its answer.
    rng = random.Random(seed)
    limit, window = 5, 6.0
    clock = FakeClock()
    log = SlidingWindowLog(limit, window, clock)
    answers: list[float] = []  # instants of the answers still to come, ascending
    arrivals: list[float] = []
    t = 0.0
    for _ in range(3000):
        # As the pacer does: wait until the window has a place, answers settling meanwhile,
        # then take it at that instant.
        while True:
            while answers and answers[0] <= t:
                clock.set(answers.pop(0))
                log.settle()
            clock.set(t)
            wait = log.time_until()
            if wait <= 0:
                break
            t = min(t + wait, answers[0]) if answers else t + wait
        assert log.reserve() == 0.0
        arrival = t + rng.choice([0.0, 0.0, 0.01, rng.uniform(0, 0.4 * window)])
        arrivals.append(arrival)
        bisect.insort(answers, arrival + rng.uniform(0.0, 0.05))
        t += rng.expovariate(2.0)
    arrivals.sort()
    most = max(
        bisect.bisect_left(arrivals, a + window) - i for i, a in enumerate(arrivals)
    )  # arrivals in [a, a + window)
    assert most == limit


# --- quota headers ---------------------------------------------------------------------------

P = "x-discogs-ratelimit"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({P: "60", f"{P}-used": "1", f"{P}-remaining": "59"}, Quota(60, 1, 59)),
        ({P: " 25 ", f"{P}-used": "0", f"{P}-remaining": "25"}, Quota(25, 0, 25)),
        ({P: b"60", f"{P}-used": b"60", f"{P}-remaining": b"0"}, Quota(60, 60, 0)),
        ({}, Quota(None, None, None)),
        ({P: "sixty", f"{P}-used": "-1", f"{P}-remaining": "1.5"}, Quota(None, None, None)),
        ({P: "", f"{P}-used": "+3", f"{P}-remaining": "٣"}, Quota(None, None, None)),
        ({P: "60", f"{P}-remaining": "1e3"}, Quota(60, None, None)),
    ],
)
def test_quota_headers_parse_counts_and_ignore_malformed_fields(
    headers: dict[str, Any], expected: Quota
) -> None:
    assert parse_quota_headers(headers, P) == expected


def test_quota_header_prefix_is_case_insensitive() -> None:
    assert parse_quota_headers({P: "60"}, "X-Discogs-Ratelimit") == Quota(60, None, None)


# -- peeks used by the gateway's FIFO pacer ---------------------------------------------------


def test_bucket_time_until_peeks_without_taking_tokens():
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=2, clock=clock)
    assert bucket.time_until() == 0.0
    assert bucket.try_acquire() and bucket.try_acquire()
    assert bucket.time_until() == pytest.approx(0.25)
    assert bucket.time_until() == pytest.approx(0.25)  # peeking twice changes nothing
    assert bucket.time_until(2) == pytest.approx(0.5)
    clock.advance(0.25)
    assert bucket.time_until() == 0.0 and bucket.try_acquire()


def test_bucket_time_until_includes_a_pause():
    clock = FakeClock(100.0)
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    bucket.block_until(103.0)
    assert bucket.time_until() == pytest.approx(3.0)
    clock.set(103.0)
    assert bucket.time_until() == 0.0 and bucket.try_acquire()
    assert bucket.time_until() == pytest.approx(0.1)


def test_window_time_until_waits_for_the_oldest_send_to_leave():
    clock = FakeClock()
    window = SlidingWindowLog(limit=3, window=10.0, clock=clock)
    for t in (0.0, 1.0, 2.0):
        clock.set(t)
        assert window.time_until() == 0.0
        assert window.reserve() == 0.0
    clock.set(5.0)
    assert window.time_until() == pytest.approx(5.0)  # the send at 0 leaves at 10
    clock.set(10.0)
    assert window.time_until() == 0.0
