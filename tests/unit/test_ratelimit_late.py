"""A late take keeps part of the refill a full bucket could not hold (``late_credit``).

Driven by a fake clock at exact instants; the expected instants are worked out by hand in each
test's comments (rate 10: one token every 0.1 s).
"""

from __future__ import annotations

import itertools
import random

import pytest

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit import TokenBucket


def bucket(
    rate: float = 10.0, burst: int = 1, credit: float = 0.5
) -> tuple[FakeClock, TokenBucket]:
    clock = FakeClock()
    return clock, TokenBucket(rate, burst, clock, late_credit=credit)


def test_a_late_take_keeps_its_lateness_the_next_token_comes_on_the_schedule() -> None:
    clock, b = bucket()
    assert b.try_acquire()  # t = 0; the next token is due at 0.1
    clock.advance(0.13)  # the timer fired 30 ms late
    assert b.try_acquire(due=0.1)
    assert b.time_until() == pytest.approx(0.07)  # at 0.2, not at 0.23
    assert b.tokens == pytest.approx(0.3)


def test_without_due_or_credit_a_late_take_loses_its_lateness() -> None:
    for due, credit in ((None, 0.5), (0.1, 0.0)):
        clock, b = bucket(credit=credit)
        assert b.try_acquire()
        clock.advance(0.13)
        assert b.try_acquire(due=due)
        assert b.time_until() == pytest.approx(0.1), (due, credit)  # at 0.23


def test_the_credit_is_capped_a_stall_never_turns_into_a_burst() -> None:
    clock, b = bucket()
    assert b.try_acquire()
    clock.advance(2.0)  # a 1.9 s stall: 19 tokens missed
    assert b.try_acquire(due=0.1)
    assert b.tokens == pytest.approx(0.5)  # half a token, not 19
    assert not b.try_acquire(due=0.2)
    assert b.time_until() == pytest.approx(0.05)  # the next send at 2.05


def test_the_credit_counts_from_when_the_bucket_became_full_not_from_an_earlier_due() -> None:
    clock, b = bucket()
    assert b.try_acquire()  # empty at 0, full again at 0.1
    clock.advance(0.12)
    # A due instant before the bucket was full (a caller armed too early) earns only the refill
    # lost since 0.1: 0.2 token.
    assert b.try_acquire(due=0.05)
    assert b.tokens == pytest.approx(0.2)


def test_an_idle_bucket_is_credited_only_since_the_due_instant() -> None:
    clock, b = bucket()
    clock.advance(5.0)  # full since 0
    assert b.try_acquire(due=4.98)  # the caller's timer was armed for 4.98
    assert b.tokens == pytest.approx(0.2)
    assert b.time_until() == pytest.approx(0.08)


def test_a_due_instant_not_yet_passed_earns_nothing() -> None:
    clock, b = bucket()
    clock.advance(1.0)
    assert b.try_acquire(due=1.5)  # fired early (a pause was set meanwhile, then ended)
    assert b.tokens == 0.0


def test_after_a_pause_the_next_token_is_never_before_the_pause_end_plus_one_interval() -> None:
    clock, b = bucket()
    b.block_until(1.0)
    clock.advance(1.04)  # released 40 ms after the pause ended
    assert b.try_acquire(due=0.5)  # due before the pause ended: counts from the pause end
    assert b.tokens == pytest.approx(0.4)
    assert b.time_until() == pytest.approx(0.06)  # at 1.1 = pause end + 0.1


def test_a_bucket_with_tokens_left_is_not_full_and_keeps_its_lateness_by_itself() -> None:
    clock, b = bucket(burst=3)
    for _ in range(3):
        assert b.try_acquire()
    clock.advance(0.13)  # level 1.3: nothing was lost, nothing is credited
    assert b.try_acquire(due=0.1)
    assert b.tokens == pytest.approx(0.3)


def test_set_burst_smaller_while_full_counts_the_fill_from_then() -> None:
    clock, b = bucket(burst=3)
    clock.advance(10.0)
    b.set_burst(1)
    clock.advance(0.02)
    assert b.try_acquire(due=9.0)  # full since the change at 10.0: 0.2 token of credit
    assert b.tokens == pytest.approx(0.2)


@pytest.mark.parametrize("credit", [-0.1, 1.0, 2.0])
def test_late_credit_outside_0_to_1_is_refused(credit: float) -> None:
    with pytest.raises(ValueError, match="late_credit"):
        TokenBucket(10.0, 1, FakeClock(), late_credit=credit)


def test_lateness_within_the_credit_keeps_every_due_instant_on_the_grid() -> None:
    # Timers 0-50 ms late at rate 10: the k-th token is due at exactly k / 10, as if no timer
    # had been late (without credit the k-th would come at k / 10 plus every lateness before).
    rng = random.Random(7)
    clock, b = bucket()
    dues = []
    for _ in range(1000):
        due = clock() + b.time_until()
        dues.append(due)
        clock.advance(due + rng.uniform(0.0, 0.05) - clock())
        assert b.try_acquire(due=due)
    assert all(due == pytest.approx(k / 10, abs=1e-9) for k, due in enumerate(dues))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_late_takes_never_exceed_burst_plus_rate_times_whole_intervals(seed: int) -> None:
    # A paced sender (a timer armed for each next token) that fires 0-80 ms late, sometimes
    # stalls 1 s, at rate 10 burst 1 and credit 0.5: in any window of k whole intervals at most
    # 1 + k sends, and two sends never closer than half an interval (0.05 s).
    rng = random.Random(seed)
    clock, b = bucket()
    sends: list[float] = []
    for _ in range(3000):
        due = clock() + b.time_until()
        late = 1.0 if rng.random() < 0.01 else rng.uniform(0.0, 0.08)
        clock.advance(due + late - clock())
        assert b.try_acquire(due=due)
        sends.append(clock())
    gaps = [y - x for x, y in itertools.pairwise(sends)]
    assert min(gaps) >= 0.05 - 1e-9
    assert min(gaps) < 0.06  # the credit was used
    for k in (1, 2, 10, 100):
        width = k / 10
        assert all(sends[i + k + 1] - sends[i] >= width - 1e-9 for i in range(len(sends) - k - 1))
