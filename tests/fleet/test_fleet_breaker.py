"""The fleet's breaker script: core/breaker.py's state machine shared through Redis, at exact
server instants (test-only script variant with the instant as an argument, see
test_fleet_rate.py), with concurrent askers from several "processes".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytest_twisted
from fleet_helpers import US, gather, task

from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.fleet import BreakerDecision, BreakerLimits, FleetStore

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
T0 = 1000.0
LIMITS = BreakerLimits(failure_threshold=3, open_timeout=30.0, success_threshold=2)
P = "musicbrainz"


async def trip(store: FleetStore, limits: BreakerLimits = LIMITS) -> BreakerDecision:
    decision = None
    for _ in range(limits.failure_threshold):
        decision = await task(store.record_failure(P, limits))
    assert decision is not None and decision.state is OPEN
    return decision


@pytest.mark.parametrize("threshold", [1, 3, 5])
@pytest_twisted.ensureDeferred
async def test_opens_after_exactly_failure_threshold_consecutive_failures_of_any_process(
    make_store: Callable[..., FleetStore], threshold: int
) -> None:
    limits = BreakerLimits(threshold, 30.0, 2)
    stores = [make_store(name) for name in "abc"]
    for i in range(threshold - 1):
        decision = await task(stores[i % 3].record_failure(P, limits))
        assert (decision.state, decision.failures, decision.transitions) == (CLOSED, i + 1, ())
        assert (await task(stores[(i + 1) % 3].allow(P, limits))).allowed
    opened = await task(stores[threshold % 3].record_failure(P, limits))
    assert (opened.previous, opened.state, opened.transitions) == (CLOSED, OPEN, ((CLOSED, OPEN),))
    assert (opened.failures, opened.retry_in) == (threshold, 30.0)
    refused = await task(stores[0].allow(P, limits))
    assert (refused.allowed, refused.state, refused.retry_in, refused.transitions) == (
        False,
        OPEN,
        30.0,
        (),
    )


@pytest_twisted.ensureDeferred
async def test_a_success_anywhere_resets_the_consecutive_failures(
    make_store: Callable[..., FleetStore],
) -> None:
    a, b = make_store("a"), make_store("b")
    for _ in range(10):
        await task(a.record_failure(P, LIMITS))
        await task(a.record_failure(P, LIMITS))
        decision = await task(b.record_success(P, LIMITS))
        assert (decision.state, decision.failures) == (CLOSED, 0)


@pytest_twisted.ensureDeferred
async def test_ignored_outcomes_neither_reset_nor_count_failures(store: FleetStore) -> None:
    for _ in range(20):
        decision = await task(store.record_ignored(P, LIMITS))  # e.g. 404, 429
        assert (decision.state, decision.failures) == (CLOSED, 0)
    await task(store.record_failure(P, LIMITS))
    await task(store.record_failure(P, LIMITS))
    assert (await task(store.record_ignored(P, LIMITS))).failures == 2
    assert (await task(store.record_failure(P, LIMITS))).state is OPEN


@pytest.mark.parametrize(
    ("elapsed", "state", "allowed", "retry_in"),
    [
        (0.0, OPEN, False, 30.0),
        (10.0, OPEN, False, 20.0),
        (30.0 - 0.001, OPEN, False, 0.001),
        (30.0 - US, OPEN, False, US),
        (30.0, HALF_OPEN, True, 0.0),
        (30.001, HALF_OPEN, True, 0.0),
    ],
)
@pytest_twisted.ensureDeferred
async def test_open_timeout_boundary_rejects_before_and_probes_at_exactly_the_timeout(
    make_store: Callable[..., FleetStore],
    clock: FakeClock,
    elapsed: float,
    state: BreakerState,
    allowed: bool,
    retry_in: float,
) -> None:
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    await trip(a)
    clock.set(T0 + elapsed)
    peeked = await task(b.peek(P, LIMITS))
    assert (peeked.state, peeked.retry_in, peeked.allowed, peeked.probes) == (
        state,
        retry_in,
        state is not OPEN,
        0,
    )
    asked = await task(b.allow(P, LIMITS))
    assert (asked.state, asked.allowed) == (state, allowed)


@pytest.mark.parametrize("success_threshold", [1, 2, 3])
@pytest_twisted.ensureDeferred
async def test_fifty_concurrent_askers_get_exactly_success_threshold_probe_permits(
    make_store: Callable[..., FleetStore], clock: FakeClock, success_threshold: int
) -> None:
    limits = BreakerLimits(1, 30.0, success_threshold)
    stores = [make_store(f"p{i}") for i in range(5)]
    clock.set(T0)
    await task(stores[0].record_failure(P, limits))
    clock.set(T0 + 30.0)
    decisions = await gather(*(stores[i % 5].allow(P, limits) for i in range(50)))
    granted = [d for d in decisions if d.allowed]
    assert len(granted) == success_threshold
    assert len({d.permit for d in granted}) == success_threshold
    assert all(d.permit is None for d in decisions if not d.allowed)
    assert {d.state for d in decisions} == {HALF_OPEN}
    # The fleet went HALF_OPEN once, and exactly one caller was told.
    assert [d.transitions for d in decisions if d.transitions] == [((OPEN, HALF_OPEN),)]
    assert max(d.probes for d in decisions) == success_threshold


@pytest_twisted.ensureDeferred
async def test_success_threshold_probe_successes_close_the_circuit(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    await trip(a)
    clock.set(T0 + 30.0)
    first, second = await task(a.allow(P, LIMITS)), await task(b.allow(P, LIMITS))
    assert first.allowed and second.allowed and first.permit != second.permit
    assert not (await task(a.allow(P, LIMITS))).allowed
    one = await task(a.record_success(P, LIMITS, first.permit))
    assert (one.state, one.probes, one.transitions) == (HALF_OPEN, 1, ())
    two = await task(b.record_success(P, LIMITS, second.permit))
    assert (two.previous, two.state, two.transitions) == (HALF_OPEN, CLOSED, ((HALF_OPEN, CLOSED),))
    assert (two.failures, two.probes) == (0, 0)
    assert (await task(a.allow(P, LIMITS))).allowed


@pytest_twisted.ensureDeferred
async def test_any_half_open_failure_reopens_with_a_fresh_open_timeout(
    store: FleetStore, clock: FakeClock
) -> None:
    clock.set(T0)
    await trip(store)
    clock.set(T0 + 31.0)
    probe = await task(store.allow(P, LIMITS))
    assert probe.allowed
    failed = await task(store.record_failure(P, LIMITS, probe.permit))
    assert (failed.state, failed.retry_in, failed.transitions, failed.probes) == (
        OPEN,
        30.0,
        ((HALF_OPEN, OPEN),),
        0,
    )
    clock.set(T0 + 61.0 - US)
    assert (await task(store.peek(P, LIMITS))).state is OPEN
    clock.set(T0 + 61.0)
    assert (await task(store.peek(P, LIMITS))).state is HALF_OPEN


@pytest_twisted.ensureDeferred
async def test_late_results_while_open_do_not_extend_the_open_period(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    await trip(a)
    clock.set(T0 + 10.0)
    late = await task(b.record_failure(P, LIMITS))  # a call admitted before the trip
    assert (late.state, late.retry_in, late.transitions) == (OPEN, 20.0, ())
    late = await task(b.record_success(P, LIMITS))
    assert (late.state, late.retry_in) == (OPEN, 20.0)
    clock.set(T0 + 30.0)
    assert (await task(a.allow(P, LIMITS))).allowed


@pytest_twisted.ensureDeferred
async def test_a_probe_permit_whose_result_never_comes_expires_after_its_lease(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    await trip(a)
    clock.set(T0 + 30.0)
    assert (await task(a.allow(P, LIMITS))).allowed
    assert (await task(a.allow(P, LIMITS))).allowed  # process a then dies with both permits
    clock.set(T0 + 60.0 - US)
    held = await task(b.allow(P, LIMITS))
    assert (held.allowed, held.probes) == (False, 2)
    clock.set(T0 + 60.0)  # leased for open_timeout
    freed = await task(b.allow(P, LIMITS))
    assert (freed.allowed, freed.probes, freed.state) == (True, 1, HALF_OPEN)


@pytest_twisted.ensureDeferred
async def test_a_result_releases_its_own_permit_so_a_lost_probe_expires_on_time(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    await trip(a)
    clock.set(T0 + 30.0)
    assert (await task(a.allow(P, LIMITS))).allowed  # a's probe is lost (lease until 60)
    clock.set(T0 + 40.0)
    probe = await task(b.allow(P, LIMITS))  # lease until 70
    clock.set(T0 + 41.0)
    assert (await task(b.record_ignored(P, LIMITS, probe.permit))).probes == 1
    clock.set(T0 + 60.0)  # a's lease is over: both permits are free again
    assert [(await task(b.allow(P, LIMITS))).allowed for _ in range(3)] == [True, True, False]


@pytest_twisted.ensureDeferred
async def test_an_ignored_result_releases_its_probe_permit_only(
    store: FleetStore, clock: FakeClock
) -> None:
    clock.set(T0)
    await trip(store)
    clock.set(T0 + 30.0)
    first = await task(store.allow(P, LIMITS))
    assert (await task(store.allow(P, LIMITS))).allowed
    assert not (await task(store.allow(P, LIMITS))).allowed
    ignored = await task(store.record_ignored(P, LIMITS, first.permit))  # e.g. a 429
    assert (ignored.state, ignored.probes) == (HALF_OPEN, 1)
    again = await task(store.allow(P, LIMITS))
    assert (again.allowed, again.probes) == (True, 2)
    unnamed = await task(store.record_ignored(P, LIMITS))  # no permit named: the oldest
    assert unnamed.probes == 1


@pytest_twisted.ensureDeferred
async def test_a_first_probe_success_can_close_an_open_circuit_in_one_call(
    store: FleetStore, clock: FakeClock
) -> None:
    limits = BreakerLimits(1, 30.0, 1)
    clock.set(T0)
    await task(store.record_failure(P, limits))
    clock.set(T0 + 30.0)
    closed = await task(store.record_success(P, limits))
    assert (closed.previous, closed.state) == (OPEN, CLOSED)
    assert closed.transitions == ((OPEN, HALF_OPEN), (HALF_OPEN, CLOSED))


@pytest_twisted.ensureDeferred
async def test_reset_closes_with_no_failure_and_no_permit(
    store: FleetStore, clock: FakeClock
) -> None:
    clock.set(T0)
    await trip(store)
    reset = await task(store.reset_breaker(P, LIMITS))
    assert (reset.state, reset.failures, reset.probes, reset.transitions) == (
        CLOSED,
        0,
        0,
        ((OPEN, CLOSED),),
    )
    assert (await task(store.record_failure(P, LIMITS))).failures == 1


@pytest.mark.parametrize(
    ("failures", "timeout", "successes"),
    [(0, 30.0, 1), (1, 30.0, 0), (1, 0.0, 1), (1, float("inf"), 1)],
)
def test_breaker_limits_refuse_values_out_of_range(
    failures: int, timeout: float, successes: int
) -> None:
    with pytest.raises(ValueError):
        BreakerLimits(failures, timeout, successes)
