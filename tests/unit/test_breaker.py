"""Circuit breaker state machine at exact fake-clock instants (resilience4j, Envoy tables)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import FakeClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def make(
    clock: FakeClock,
    failures: int = 3,
    timeout: float = 30.0,
    successes: int = 2,
    events: list[tuple[BreakerState, BreakerState]] | None = None,
) -> CircuitBreaker:
    on_transition = None if events is None else lambda old, new: events.append((old, new))
    return CircuitBreaker(failures, timeout, successes, clock=clock, on_transition=on_transition)


def trip(breaker: CircuitBreaker) -> None:
    while breaker.state is not OPEN:
        breaker.record_failure()


def test_state_values_are_the_documented_strings() -> None:
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]


@pytest.mark.parametrize("threshold", [1, 3, 5, 10])
def test_opens_after_exactly_failure_threshold_consecutive_failures(threshold: int) -> None:
    breaker = make(FakeClock(), failures=threshold)
    for _ in range(threshold - 1):
        breaker.record_failure()
        assert breaker.state is CLOSED
        assert breaker.allow_request()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert (breaker.opened_count, breaker.failure_count) == (1, threshold)
    assert not breaker.allow_request()


def test_success_resets_the_consecutive_failure_count() -> None:
    breaker = make(FakeClock(), failures=3)
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is CLOSED
    assert (breaker.failure_count, breaker.failures_total, breaker.opened_count) == (0, 20, 0)


def test_ignored_outcomes_neither_reset_nor_count_failures() -> None:
    breaker = make(FakeClock(), failures=3)
    for _ in range(100):
        breaker.record_ignored()  # e.g. 404s: say nothing about health
    assert breaker.state is CLOSED
    assert (breaker.failure_count, breaker.failures_total, breaker.successes_total) == (0, 0, 0)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_ignored()  # e.g. a 429 between two 503s does not hide the outage
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.ignored_total == 101


@pytest.mark.parametrize(
    ("elapsed", "state", "allowed", "retry_in"),
    [
        (0.0, OPEN, False, 30.0),
        (10.0, OPEN, False, 20.0),
        (29.999, OPEN, False, pytest.approx(0.001, abs=1e-9)),
        (30.0, HALF_OPEN, True, 0.0),
        (30.001, HALF_OPEN, True, 0.0),
    ],
)
def test_open_timeout_boundary_rejects_before_and_probes_at_exactly_the_timeout(
    elapsed: float, state: BreakerState, allowed: bool, retry_in: Any
) -> None:
    clock = FakeClock(1000.0)
    breaker = make(clock, failures=1, timeout=30.0)
    breaker.record_failure()  # opens at t=1000
    clock.set(1000.0 + elapsed)
    assert breaker.retry_in() == retry_in
    assert breaker.state is state
    assert breaker.allow_request() is allowed


@pytest.mark.parametrize("success_threshold", [1, 2, 3])
def test_half_open_grants_at_most_success_threshold_concurrent_probes(
    success_threshold: int,
) -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1, successes=success_threshold)
    breaker.record_failure()
    rejected_before = breaker.rejected_count
    clock.advance(30.0)
    granted = [breaker.allow_request() for _ in range(50)]  # 50 concurrent callers
    assert sum(granted) == success_threshold
    assert granted[:success_threshold] == [True] * success_threshold
    assert breaker.rejected_count - rejected_before == 50 - success_threshold
    assert breaker.state is HALF_OPEN


def test_half_open_closes_after_success_threshold_successes() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=2, successes=2)
    trip(breaker)
    clock.advance(30.0)
    assert breaker.allow_request() and breaker.allow_request()
    breaker.record_success()
    assert breaker.state is HALF_OPEN
    breaker.record_success()
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0
    assert all(breaker.allow_request() for _ in range(100))


def test_a_released_probe_permit_lets_the_next_probe_go() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1, successes=2)
    breaker.record_failure()
    clock.advance(30.0)
    assert [breaker.allow_request() for _ in range(3)] == [True, True, False]
    breaker.record_success()
    assert breaker.allow_request()
    breaker.record_ignored()  # a 404 probe: releases its permit, proves nothing
    assert breaker.state is HALF_OPEN
    assert breaker.allow_request()
    assert not breaker.allow_request()
    breaker.record_success()  # second success closes
    assert breaker.state is CLOSED


def test_failure_in_half_open_reopens_with_a_fresh_open_timeout() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1, timeout=30.0, successes=2)
    breaker.record_failure()
    clock.set(30.0)
    assert breaker.allow_request()
    breaker.record_success()
    clock.set(35.0)
    assert breaker.allow_request()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.opened_count == 2
    clock.set(64.999)
    assert breaker.state is OPEN
    assert not breaker.allow_request()
    clock.set(65.0)
    assert breaker.state is HALF_OPEN
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state is HALF_OPEN  # the success before reopening does not carry over


def test_lost_probe_permits_expire_after_the_open_timeout_lease() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1, timeout=30.0, successes=2)
    breaker.record_failure()
    clock.set(30.0)
    assert breaker.allow_request() and breaker.allow_request()  # both probes hang forever
    clock.set(59.999)
    assert not breaker.allow_request()
    clock.set(60.0)
    assert [breaker.allow_request() for _ in range(3)] == [True, True, False]
    breaker.record_success()
    breaker.record_success()
    assert breaker.state is CLOSED


def test_each_transition_is_reported_exactly_once_and_rejections_are_counted() -> None:
    clock = FakeClock()
    events: list[tuple[BreakerState, BreakerState]] = []
    breaker = make(clock, failures=2, timeout=10.0, successes=1, events=events)
    refusals = 0
    breaker.record_failure()
    breaker.record_failure()  # CLOSED -> OPEN
    for _ in range(5):
        refusals += not breaker.allow_request()
    clock.set(10.0)
    for _ in range(5):  # many reads at the boundary: one OPEN -> HALF_OPEN
        assert breaker.state is HALF_OPEN
    refusals += not breaker.allow_request()
    breaker.record_failure()  # HALF_OPEN -> OPEN
    clock.set(20.0)
    refusals += not breaker.allow_request()  # OPEN -> HALF_OPEN, granted
    refusals += not breaker.allow_request()  # refused: the one permit is out
    breaker.record_success()  # HALF_OPEN -> CLOSED
    breaker.record_success()
    assert events == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert breaker.rejected_count == refusals == 6
    assert breaker.opened_count == 2


def test_listener_sees_the_new_state() -> None:
    seen: list[BreakerState] = []
    breaker: CircuitBreaker = CircuitBreaker(
        1, 5.0, 1, clock=FakeClock(), on_transition=lambda old, new: seen.append(breaker.state)
    )
    breaker.record_failure()
    assert seen == [OPEN]


def test_late_results_while_open_are_counted_but_do_not_extend_the_open_period() -> None:
    clock = FakeClock()
    events: list[tuple[BreakerState, BreakerState]] = []
    breaker = make(clock, failures=3, timeout=30.0, events=events)
    trip(breaker)  # opens at t=0
    clock.set(10.0)
    for _ in range(5):
        breaker.record_failure()  # calls admitted before opening, failing late
    breaker.record_success()
    assert breaker.state is OPEN
    assert breaker.retry_in() == 20.0  # not pushed back (Polly v8)
    assert (breaker.failures_total, breaker.successes_total, breaker.opened_count) == (8, 1, 1)
    clock.set(30.0)
    assert breaker.state is HALF_OPEN
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


def test_retry_in_is_zero_unless_open() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1, timeout=30.0)
    assert breaker.retry_in() == 0.0
    breaker.record_failure()
    clock.set(12.5)
    assert breaker.retry_in() == 17.5
    clock.set(30.0)
    assert breaker.retry_in() == 0.0
    assert breaker.state is HALF_OPEN


def test_force_open_holds_open_past_the_timeout_until_reset() -> None:
    clock = FakeClock()
    events: list[tuple[BreakerState, BreakerState]] = []
    breaker = make(clock, timeout=30.0, events=events)
    breaker.force_open()
    assert breaker.forced and breaker.state is OPEN
    clock.set(1000.0)
    assert breaker.state is OPEN
    assert not breaker.allow_request()
    assert breaker.retry_in() == math.inf
    breaker.reset()
    assert not breaker.forced and breaker.state is CLOSED
    assert breaker.allow_request()
    assert events == [(CLOSED, OPEN), (OPEN, CLOSED)]
    assert (breaker.opened_count, breaker.rejected_count) == (1, 1)


def test_force_open_on_an_open_circuit_emits_no_second_transition() -> None:
    clock = FakeClock()
    events: list[tuple[BreakerState, BreakerState]] = []
    breaker = make(clock, failures=1, events=events)
    breaker.record_failure()
    breaker.force_open()
    clock.set(100.0)
    assert breaker.state is OPEN
    assert events == [(CLOSED, OPEN)]
    assert breaker.opened_count == 1


def test_reset_closes_and_clears_the_failure_count_but_keeps_stats() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.reset()  # already CLOSED: no transition, count cleared
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED
    breaker.record_failure()
    assert breaker.state is OPEN
    breaker.reset()
    assert (breaker.state, breaker.failure_count, breaker.failures_total) == (CLOSED, 0, 5)


@pytest.mark.parametrize(
    ("failures", "timeout", "successes"),
    [(0, 30.0, 1), (1, 30.0, 0), (1, 0.0, 1), (1, -1.0, 1), (1, math.inf, 1), (1, math.nan, 1)],
)
def test_invalid_breaker_arguments_raise_value_error(
    failures: int, timeout: float, successes: int
) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures, timeout, successes, clock=FakeClock())
