"""Shared/fallback state machine at exact fake-clock instants: one warning, probes, the share."""

from __future__ import annotations

import math

import pytest

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.fallback import LimiterMode, SharedFallback

SHARED, FALLBACK = LimiterMode.SHARED, LimiterMode.FALLBACK


def test_mode_values_are_the_documented_strings() -> None:
    assert [m.value for m in LimiterMode] == ["shared", "fallback"]


def test_starts_shared_and_stays_shared_while_redis_answers() -> None:
    fallback = SharedFallback(probe_interval=5.0, clock=FakeClock())
    for _ in range(10):
        assert fallback.use_shared() is True
        assert fallback.redis_ok() is False  # nothing ended
    assert (fallback.mode, fallback.outages, fallback.failures) == (SHARED, 0, 0)
    assert fallback.next_probe == math.inf


def test_many_failures_at_once_are_one_outage_reported_once() -> None:
    clock = FakeClock(100.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    started = [fallback.redis_failed() for _ in range(20)]  # 20 acquires in flight fail together
    assert started == [True] + [False] * 19
    assert (fallback.mode, fallback.outages, fallback.failures) == (FALLBACK, 1, 20)
    assert fallback.next_probe == 105.0


@pytest.mark.parametrize(
    ("t", "probe"),
    [(100.0, False), (104.999, False), (105.0, True)],
)
def test_the_first_probe_is_due_probe_interval_after_the_outage_starts(
    t: float, probe: bool
) -> None:
    clock = FakeClock(100.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    fallback.redis_failed()
    clock.set(t)
    assert fallback.use_shared() is probe


def test_one_probe_per_interval_even_while_a_probe_hangs() -> None:
    clock = FakeClock(0.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    fallback.redis_failed()
    clock.set(5.0)
    assert [fallback.use_shared() for _ in range(5)] == [True, False, False, False, False]
    assert fallback.next_probe == 10.0
    clock.set(9.999)  # the probe has not answered yet
    assert fallback.use_shared() is False
    clock.set(10.0)
    assert fallback.use_shared() is True
    assert fallback.probes == 2


def test_a_failed_probe_moves_the_next_probe_a_full_interval_past_the_failure() -> None:
    clock = FakeClock(0.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    fallback.redis_failed()
    clock.set(5.0)
    assert fallback.use_shared() is True  # next due 10.0
    clock.set(7.0)  # the probe times out after 2 s
    assert fallback.redis_failed() is False  # same outage: no second warning
    assert fallback.next_probe == 12.0
    clock.set(11.999)
    assert fallback.use_shared() is False
    clock.set(12.0)
    assert fallback.use_shared() is True
    assert (fallback.outages, fallback.failures) == (1, 2)


def test_redis_answering_ends_the_outage_once_and_the_next_failure_is_a_new_outage() -> None:
    clock = FakeClock(0.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    fallback.redis_failed()
    clock.set(5.0)
    assert fallback.use_shared() is True
    clock.set(5.25)
    assert fallback.redis_ok() is True  # the probe answered: back to shared
    assert fallback.redis_ok() is False
    assert (fallback.mode, fallback.next_probe, fallback.fallback_seconds) == (
        SHARED,
        math.inf,
        5.25,
    )
    assert all(fallback.use_shared() for _ in range(10))
    clock.set(20.0)
    assert fallback.redis_failed() is True  # a second outage warns again
    assert (fallback.outages, fallback.next_probe) == (2, 25.0)
    clock.set(21.0)
    fallback.redis_ok()  # a call in flight from before answered: back at once
    assert (fallback.mode, fallback.fallback_seconds) == (SHARED, 6.25)


def test_an_answer_to_a_call_sent_before_the_outage_does_not_end_it() -> None:
    # A restart: a call sent at 9.9 is read after another call's lost connection at 10.0.
    clock = FakeClock(10.0)
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    assert fallback.redis_failed() is True
    assert fallback.redis_ok(started=9.9) is False
    assert fallback.mode is FALLBACK
    clock.set(15.0)
    assert fallback.use_shared() is True
    assert fallback.redis_ok(started=15.0) is True  # the probe, sent in the outage
    assert fallback.mode is SHARED


@pytest.mark.parametrize(
    ("processes", "rate", "burst", "expected"),
    [
        (1, 10.0, 20, (10.0, 20)),
        (2, 10.0, 20, (5.0, 10)),
        (3, 10.0, 20, (10.0 / 3, 6)),
        (4, 1.0, 1, (0.25, 1)),  # burst never below one token
        (8, 10.0, 10, (1.25, 1)),
        (0, 10.0, 10, (10.0, 10)),  # no heartbeat of its own yet: counts as 1
        (-3, 10.0, 10, (10.0, 10)),
    ],
)
def test_local_share_is_rate_and_burst_over_the_live_processes_last_seen(
    processes: int, rate: float, burst: int, expected: tuple[float, int]
) -> None:
    fallback = SharedFallback(clock=FakeClock())
    fallback.saw_processes(processes)
    assert fallback.local_limits(rate, burst) == expected


def test_the_share_uses_the_count_seen_before_the_outage() -> None:
    clock = FakeClock()
    fallback = SharedFallback(probe_interval=5.0, clock=clock)
    fallback.saw_processes(4)
    fallback.redis_failed()
    assert fallback.processes == 4
    assert fallback.local_limits(10.0, 8) == (2.5, 2)
    clock.set(5.0)
    assert fallback.use_shared()
    fallback.redis_ok()
    fallback.saw_processes(2)  # one process left meanwhile
    assert fallback.local_limits(10.0, 8) == (5.0, 4)


def test_a_count_is_kept_for_the_memory_counted_back_from_the_last_count_seen() -> None:
    # A restarted Redis has lost the heartbeats: counts of 1, then 2, while 3 are live.
    clock = FakeClock()
    fallback = SharedFallback(probe_interval=5.0, clock=clock, memory=15.0)
    fallback.saw_processes(3)
    clock.set(10.0)
    fallback.saw_processes(1)
    assert fallback.processes == 3
    assert fallback.local_limits(9.0, 3) == (3.0, 1)
    clock.set(14.5)
    fallback.saw_processes(2)
    assert fallback.processes == 3  # the 3 seen at 0.0 is younger than 15 s: still kept
    # An outage: no count for a long time; the counts before it still decide.
    fallback.redis_failed()
    clock.set(100.0)
    assert fallback.processes == 3
    fallback.saw_processes(2)
    assert fallback.processes == 2  # everything up to 85.0 is forgotten
    clock.set(110.0)
    fallback.saw_processes(1)
    assert fallback.processes == 2
    clock.set(125.5)
    fallback.saw_processes(1)
    assert fallback.processes == 1


def test_without_memory_the_last_count_alone_decides() -> None:
    clock = FakeClock()
    fallback = SharedFallback(clock=clock)
    fallback.saw_processes(3)
    fallback.saw_processes(1)
    assert fallback.processes == 1


def test_a_process_that_never_reached_redis_assumes_the_configured_fleet() -> None:
    fallback = SharedFallback(processes=3, clock=FakeClock())
    fallback.redis_failed()
    assert fallback.local_limits(9.0, 3) == (3.0, 1)


@pytest.mark.parametrize(
    ("probe_interval", "processes", "message"),
    [
        (0.0, 1, "probe_interval"),
        (math.inf, 1, "probe_interval"),
        (math.nan, 1, "probe_interval"),
        (5.0, 0, "processes"),
    ],
)
def test_invalid_arguments_are_refused_naming_the_argument(
    probe_interval: float, processes: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SharedFallback(probe_interval=probe_interval, processes=processes)


@pytest.mark.parametrize("memory", [-1.0, math.inf, math.nan])
def test_an_invalid_memory_is_refused(memory: float) -> None:
    with pytest.raises(ValueError, match="memory"):
        SharedFallback(memory=memory)
