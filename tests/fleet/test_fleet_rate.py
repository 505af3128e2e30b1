"""The fleet's rate script at exact server instants: bucket, line, pause, window, learned quota.

Time: these tests run the test-only variant of each script (``FleetStore(clock=FakeClock)``),
generated from the same Lua body as production with ``now`` taken from an argument instead of
Redis ``TIME`` (scrapy_apigw/fleet/scripts.py). The ``TIME`` path itself is tested in
test_fleet_store.py. Expected values are worked out by hand, redis-cell style.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytest_twisted
from fleet_helpers import US, gather, task

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit import Quota
from scrapy_apigw.fleet import FleetStore, LearnedQuota, RateDecision, RateLimits

T0 = 1000.0  # the fake clock's start, seconds


async def at(
    store: FleetStore, clock: FakeClock, t: float, limits: RateLimits, waiter: str = "a"
) -> RateDecision:
    clock.set(T0 + t)
    return await task(store.acquire("musicbrainz", limits, waiter))


def row(decision: RateDecision) -> tuple[bool, float, float, int]:
    return (decision.granted, decision.wait, decision.tokens, decision.ahead)


@pytest_twisted.ensureDeferred
async def test_bucket_starts_full_grants_burst_then_tells_the_exact_wait(
    store: FleetStore, clock: FakeClock
) -> None:
    limits = RateLimits(rate=10.0, burst=5)
    steps = [
        # t, waiter, (granted, wait, tokens after, ahead)
        (0.0, "p1", (True, 0.0, 4.0, 0)),
        (0.0, "p1", (True, 0.0, 3.0, 0)),
        (0.0, "p2", (True, 0.0, 2.0, 0)),
        (0.0, "p3", (True, 0.0, 1.0, 0)),
        (0.0, "p1", (True, 0.0, 0.0, 0)),
        (0.0, "p1", (False, 0.1, 0.0, 0)),  # first in line: the next token, at 0.1
        (0.0, "p2", (False, 0.2, 0.0, 1)),  # second in line
        (0.05, "p1", (False, 0.05, 0.5, 0)),  # early: same turn, 0.1
        (0.1, "p1", (True, 0.0, 0.0, 0)),
        (0.1, "p2", (False, 0.1, 0.0, 0)),  # the token of 0.1 went to p1
        (0.2, "p2", (True, 0.0, 0.0, 0)),
        (0.45, "p3", (True, 0.0, 1.5, 0)),  # refill 2.5 tokens, one taken
        (100.0, "p3", (True, 0.0, 4.0, 0)),  # refill stops at burst
    ]
    for t, waiter, expected in steps:
        assert row(await at(store, clock, t, limits, waiter)) == expected, (t, waiter)


@pytest_twisted.ensureDeferred
async def test_refill_is_continuous_at_rate_and_matches_the_local_bucket_table(
    store: FleetStore, clock: FakeClock
) -> None:
    # test_ratelimit.py's TokenBucket(rate=2, burst=5): levels 0, 0.5, 2, 4, 5 at 0, 0.25, 1,
    # 2, 2.5 after taking 5. Here each probe is a denied newcomer (taking nothing) or a grant.
    limits = RateLimits(rate=2.0, burst=5)
    for _ in range(5):
        assert (await at(store, clock, 0.0, limits)).granted
    decision = await at(store, clock, 0.25, limits, "probe")
    assert row(decision) == (False, 0.25, 0.5, 0)
    assert row(await at(store, clock, 0.5, limits, "probe")) == (True, 0.0, 0.0, 0)
    assert row(await at(store, clock, 2.5, limits, "x")) == (True, 0.0, 3.0, 0)
    assert row(await at(store, clock, 9.0, limits, "x")) == (True, 0.0, 4.0, 0)


@pytest_twisted.ensureDeferred
async def test_a_waiter_sleeping_its_told_wait_is_granted_at_every_turn(
    store: FleetStore, clock: FakeClock
) -> None:
    # 3 req/s, burst 1: each turn is 1/3 s rounded up to the microsecond (333334 us; the
    # bucket, full at 333333.33 us, cannot hold the extra 0.67 us of refill), and the waiter
    # coming back at its turn is always granted: 400 calls, 200 grants, no extra round trip.
    limits = RateLimits(rate=3.0, burst=1)
    t = 0.0
    grants = []
    for _ in range(400):
        decision = await at(store, clock, t, limits)
        if decision.granted:
            grants.append(round((clock() - T0) * 1e6))
        else:
            t = clock() - T0 + decision.wait
    assert grants == [k * 333334 for k in range(200)]


@pytest_twisted.ensureDeferred
async def test_waiters_are_served_in_arrival_order_across_processes(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=1.0, burst=1)
    a, b, c, d, e = (make_store(name) for name in "abcde")

    async def ask(store: FleetStore, t: float) -> tuple[bool, float, float, int]:
        clock.set(T0 + t)
        return row(await task(store.acquire("musicbrainz", limits)))

    assert await ask(a, 0.0) == (True, 0.0, 0.0, 0)
    assert await ask(b, 0.0) == (False, 1.0, 0.0, 0)
    assert await ask(c, 0.0) == (False, 2.0, 0.0, 1)
    assert await ask(d, 0.0) == (False, 3.0, 0.0, 2)
    assert await ask(c, 1.0) == (False, 1.0, 1.0, 1)  # early: b keeps the token of t=1
    assert await ask(b, 1.0) == (True, 0.0, 0.0, 0)
    assert await ask(e, 1.5) == (False, 2.5, 0.5, 2)  # a newcomer goes behind c and d: t=4
    assert await ask(d, 2.0) == (False, 1.0, 1.0, 1)
    assert await ask(c, 2.0) == (True, 0.0, 0.0, 0)
    assert await ask(d, 3.0) == (True, 0.0, 0.0, 0)
    assert await ask(e, 4.0) == (True, 0.0, 0.0, 0)


@pytest_twisted.ensureDeferred
async def test_a_newcomer_is_never_put_before_a_waiter_in_line_even_when_the_rate_rises(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    slow, fast = RateLimits(rate=1.0, burst=1), RateLimits(rate=10.0, burst=1)
    a, b, c = (make_store(name) for name in "abc")
    clock.set(T0)
    assert (await task(a.acquire("spotify", slow))).granted
    assert row(await task(b.acquire("spotify", slow))) == (False, 1.0, 0.0, 0)
    # The rate rises to 10 req/s (e.g. the adaptive rate recovering): at the new rate c's own
    # turn would be 0.2 s, before b's; c is told b's turn instead and stays behind it.
    assert row(await task(c.acquire("spotify", fast))) == (False, 1.0, 0.0, 1)
    clock.set(T0 + 1.0)
    assert row(await task(c.acquire("spotify", fast))) == (False, 0.1, 1.0, 1)
    assert (await task(b.acquire("spotify", fast))).granted


@pytest_twisted.ensureDeferred
async def test_a_waiter_late_beyond_the_grace_loses_its_place_and_its_token(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=1.0, burst=1, grace=0.1)
    a, b, c = (make_store(name) for name in "abc")

    async def ask(store: FleetStore, t: float) -> tuple[bool, float, float, int]:
        clock.set(T0 + t)
        return row(await task(store.acquire("musicbrainz", limits)))

    assert await ask(a, 0.0) == (True, 0.0, 0.0, 0)
    assert await ask(b, 0.0) == (False, 1.0, 0.0, 0)  # turn 1.0
    assert await ask(c, 0.0) == (False, 2.0, 0.0, 1)  # turn 2.0
    # At 1.1 = turn + grace b still holds its place (and the one token there) ...
    assert await ask(c, 1.1) == (False, 1.0, 1.0, 1)
    # ... one microsecond later it has lost both to c.
    assert await ask(c, 1.1 + US) == (True, 0.0, 0.0, 0)
    assert await ask(b, 1.2) == (False, 0.900001, 0.099999, 0)  # a newcomer now


@pytest.mark.parametrize(("burst", "stall"), [(1, 4.0), (3, 10.0), (5, 100.0)])
@pytest_twisted.ensureDeferred
async def test_a_stalled_process_gets_at_most_the_burst_when_it_wakes(
    make_store: Callable[..., FleetStore], clock: FakeClock, burst: int, stall: float
) -> None:
    # The process was told its turn, then its reactor stalled for *stall* seconds. No token was
    # reserved for it, so waking it asks again and finds only what the bucket holds: the burst.
    limits = RateLimits(rate=1.0, burst=burst)
    stalled = make_store("stalled")
    for _ in range(burst):
        assert (await at(stalled, clock, 0.0, limits, "stalled")).granted
    told = await at(stalled, clock, 0.0, limits, "stalled")
    assert (told.granted, told.wait) == (False, 1.0)
    clock.set(T0 + stall)
    decisions = [await task(stalled.acquire("musicbrainz", limits)) for _ in range(20)]
    assert [d.granted for d in decisions] == [True] * burst + [False] * (20 - burst)
    assert decisions[-1].wait == 1.0


@pytest_twisted.ensureDeferred
async def test_one_hundred_concurrent_acquires_against_burst_five_grant_exactly_five(
    make_store: Callable[..., FleetStore],
) -> None:
    # Server clock (no injected time), 8 connections, 4 "processes"; at 0.001 req/s no token
    # refills during the test. 100 calls queue on 8 connections: on a loaded machine the last
    # one waits longer than the default 0.5 s bound, which is not what this test is about.
    limits = RateLimits(rate=0.001, burst=5)
    stores = [make_store(f"p{i}", clock=None, timeout=10.0) for i in range(4)]
    decisions = await gather(
        *(stores[i % 4].acquire("discogs", limits, waiter=f"w{i}") for i in range(100))
    )
    assert sum(d.granted for d in decisions) == 5
    denied = sorted(d.ahead for d in decisions if not d.granted)
    assert denied == list(range(95))  # every denied waiter got its own place in the line


@pytest_twisted.ensureDeferred
async def test_a_pause_holds_every_process_until_the_same_instant_then_one_token(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=2.0, burst=4)
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    paused = await task(a.pause("spotify", 10.0, limits))
    assert (paused.applied, paused.paused_for, paused.server_time) == (True, 10.0, T0)
    for t, wait in [(0.0, 10.0), (5.0, 5.0), (10.0 - US, US)]:
        clock.set(T0 + t)
        decision = await task(b.acquire("spotify", limits))
        assert (decision.granted, decision.wait, decision.paused_for) == (False, wait, wait), t
    clock.set(T0 + 10.0)
    decision = await task(a.acquire("spotify", limits))  # a is newcomer behind b: b's token
    assert (decision.granted, decision.wait, decision.ahead) == (False, 0.5, 1)
    decision = await task(b.acquire("spotify", limits))
    assert (decision.granted, decision.tokens, decision.paused_for) == (True, 0.0, 0.0)
    clock.set(T0 + 10.5)
    assert (await task(a.acquire("spotify", limits))).granted  # refill at rate, no burst
    clock.set(T0 + 20.0)
    assert (await task(a.acquire("spotify", limits))).tokens == 3.0  # full again, one taken


@pytest_twisted.ensureDeferred
async def test_pause_is_set_if_later(store: FleetStore, clock: FakeClock) -> None:
    limits = RateLimits(rate=1.0, burst=1)
    clock.set(T0)
    assert (await task(store.pause("spotify", 10.0, limits))).applied
    clock.set(T0 + 1.0)
    earlier = await task(store.pause("spotify", 5.0, limits))  # ends at 6 < 10
    assert (earlier.applied, earlier.paused_for) == (False, 9.0)
    same = await task(store.pause("spotify", 9.0, limits))  # ends at 10: not later
    assert (same.applied, same.paused_for) == (False, 9.0)
    later = await task(store.pause("spotify", 12.0, limits))
    assert (later.applied, later.paused_for) == (True, 12.0)
    clock.set(T0 + 13.0 - US)
    assert not (await task(store.acquire("spotify", limits))).granted
    clock.set(T0 + 13.0)
    assert (await task(store.acquire("spotify", limits))).granted


@pytest_twisted.ensureDeferred
async def test_a_pause_of_zero_drops_a_full_bucket_to_one_token(
    store: FleetStore, clock: FakeClock
) -> None:
    limits = RateLimits(rate=1.0, burst=10)
    clock.set(T0 + 50.0)
    assert (await task(store.pause("spotify", 0.0, limits))).applied
    assert row(await task(store.acquire("spotify", limits))) == (True, 0.0, 0.0, 0)
    assert row(await task(store.acquire("spotify", limits))) == (False, 1.0, 0.0, 0)


@pytest_twisted.ensureDeferred
async def test_waiters_in_line_during_a_pause_are_served_from_its_end_at_rate(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=2.0, burst=1)
    a, b, c = (make_store(name) for name in "abc")
    clock.set(T0)
    assert (await task(a.acquire("lastfm", limits))).granted
    assert row(await task(b.acquire("lastfm", limits))) == (False, 0.5, 0.0, 0)
    assert (await task(a.pause("lastfm", 10.0, limits))).applied  # e.g. a 429 seen by a
    clock.set(T0 + 0.5)
    assert row(await task(b.acquire("lastfm", limits)))[:2] == (False, 9.5)
    clock.set(T0 + 1.0)
    assert row(await task(c.acquire("lastfm", limits)))[:2] == (False, 9.5)  # turn 10.5
    clock.set(T0 + 10.0)
    assert (await task(b.acquire("lastfm", limits))).granted
    clock.set(T0 + 10.5)
    assert (await task(c.acquire("lastfm", limits))).granted


@pytest_twisted.ensureDeferred
async def test_sliding_window_allows_limit_sends_per_moving_window(
    store: FleetStore, clock: FakeClock
) -> None:
    limits = RateLimits(rate=100.0, burst=100, window_limit=3, window=10.0)
    steps = [
        # t, granted, wait, window used
        (0.0, True, 0.0, 1),
        (1.0, True, 0.0, 2),
        (2.0, True, 0.0, 3),
        (3.0, False, 7.0, 3),  # the send of t=0 leaves the window (t-10, t] at 10
        (10.0 - US, False, US, 3),
        (10.0, True, 0.0, 3),  # sends at 1, 2, 10
        (10.5, False, 0.5, 3),
        (11.0, True, 0.0, 3),
        (30.0, True, 0.0, 1),
    ]
    for t, granted, wait, used in steps:
        decision = await at(store, clock, t, limits)
        assert (decision.granted, decision.wait, decision.window_used) == (granted, wait, used), t
        assert decision.window_limit == 3


@pytest_twisted.ensureDeferred
async def test_waiters_for_a_full_window_are_given_their_turns_in_order(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=100.0, burst=100, window_limit=2, window=10.0)
    a, b, c, d = (make_store(name) for name in "abcd")
    clock.set(T0)
    assert (await task(a.acquire("discogs", limits))).granted
    assert (await task(a.acquire("discogs", limits))).granted
    assert row(await task(b.acquire("discogs", limits)))[:2] == (False, 10.0)
    assert row(await task(c.acquire("discogs", limits)))[:2] == (False, 10.0)
    clock.set(T0 + 5.0)
    # Two waiters ahead, both sending at 10: d's place is when b's send leaves, at 20.
    assert (await task(d.acquire("discogs", limits))).wait == 15.0
    clock.set(T0 + 10.0)
    assert (await task(b.acquire("discogs", limits))).granted
    assert (await task(c.acquire("discogs", limits))).granted
    clock.set(T0 + 20.0 - US)
    assert not (await task(d.acquire("discogs", limits))).granted
    clock.set(T0 + 20.0)
    assert (await task(d.acquire("discogs", limits))).granted


@pytest_twisted.ensureDeferred
async def test_a_learned_limit_replaces_the_configured_window_limit_for_every_process(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=100.0, burst=100, window_limit=59, window=60.0, margin=1)
    a, b = make_store("a"), make_store("b")
    clock.set(T0)
    first = await task(b.acquire("discogs", limits))
    assert (first.window_limit, first.learned) == (59, None)
    # a sees X-Discogs-Ratelimit: 3 (unauthenticated Discogs announces 25)
    assert await task(a.learn_quota("discogs", Quota(limit=3, used=1, remaining=2), ttl=60.0))
    second = await task(b.acquire("discogs", limits))
    assert (second.granted, second.window_limit, second.window_used) == (True, 2, 2)
    assert second.learned == LearnedQuota(limit=3, remaining=2)
    third = await task(b.acquire("discogs", limits))
    assert (third.granted, third.wait) == (False, 60.0)
    # A response that announces only Remaining keeps the learned limit.
    assert await task(a.learn_quota("discogs", Quota(limit=None, used=None, remaining=0), 60.0))
    assert (await task(b.acquire("discogs", limits))).learned == LearnedQuota(3, 0)
    assert not await task(a.learn_quota("discogs", Quota(None, None, None), 60.0))


@pytest_twisted.ensureDeferred
async def test_providers_and_fleets_do_not_share_state(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=1.0, burst=1)
    store = make_store("a")
    other_fleet = FleetStore(store._redis, fleet="other", process_id="a", clock=clock)
    clock.set(T0)
    assert (await task(store.acquire("discogs", limits))).granted
    assert (await task(store.acquire("spotify", limits))).granted
    assert (await task(other_fleet.acquire("discogs", limits))).granted
    assert not (await task(store.acquire("discogs", limits))).granted


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0, "burst": 1},
        {"rate": float("inf"), "burst": 1},
        {"rate": 1.0, "burst": 0},
        {"rate": 1.0, "burst": 1, "window_limit": 5},
        {"rate": 1.0, "burst": 1, "window": 60.0},
        {"rate": 1.0, "burst": 1, "window_limit": -1, "window": 60.0},
        {"rate": 1.0, "burst": 1, "margin": -1},
        {"rate": 1.0, "burst": 1, "grace": -0.1},
    ],
)
def test_rate_limits_refuse_values_out_of_range(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimits(**kwargs)  # type: ignore[arg-type]


# -- early grants and the next turn (docs/design.md, "Early grants") -----------------------------


def most_in_any_window(instants: list[float], length: float) -> int:
    """The most *instants* in any half-open window (t - length, t] (ends at an instant)."""
    return max(sum(1 for s in instants if t - length < s <= t + 1e-9) for t in instants)


async def greedy_grants(
    store: FleetStore, clock: FakeClock, limits: RateLimits, sends: int
) -> list[int]:
    """Ask at once after each grant and exactly at each told turn; the grants' instants, us."""
    t, grants = 0.0, []
    while len(grants) < sends:
        decision = await at(store, clock, t, limits)
        if decision.granted:
            grants.append(round(t * 1e6))
        else:
            t += decision.wait
    return grants


@pytest_twisted.ensureDeferred
async def test_a_token_due_within_early_is_granted_now_and_the_grid_does_not_move(
    store: FleetStore, clock: FakeClock
) -> None:
    # 10 req/s, burst 1, early 2 ms: after the first grant each one comes 2 ms before its
    # token is due, and the next is due 100 ms after the previous token's due time, not the
    # grant's: early grants never add up into a faster rate.
    limits = RateLimits(rate=10.0, burst=1, early=0.002)
    assert (await at(store, clock, 0.0, limits)).granted
    told = await at(store, clock, 0.0, limits)
    assert (told.granted, told.wait) == (False, 0.098)
    assert row(await at(store, clock, 0.097999, limits))[:2] == (False, US)
    decision = await at(store, clock, 0.098, limits)
    assert (decision.granted, round(decision.tokens, 9)) == (True, -0.02)
    assert (await at(store, clock, 0.098, limits)).wait == 0.1  # due at 0.2, granted at 0.198
    assert row(await at(store, clock, 0.198, limits))[:2] == (True, 0.0)
    assert (await at(store, clock, 0.198, limits)).wait == 0.1


@pytest.mark.parametrize(("burst", "early"), [(1, 0.002), (3, 0.002), (1, 0.024)])
@pytest_twisted.ensureDeferred
async def test_early_grants_keep_every_window_within_rate_times_length_plus_burst(
    store: FleetStore, clock: FakeClock, burst: int, early: float
) -> None:
    # The bound: any L seconds hold at most burst + rate * (L + early) grants; with
    # rate * early < 1 that is burst + rate * L for the provider's whole-token windows.
    limits = RateLimits(rate=10.0, burst=burst, early=early)
    grants = [g / 1e6 for g in await greedy_grants(store, clock, limits, 60)]
    for length, bound in [(0.1, burst + 1), (0.5, burst + 5), (1.0, burst + 10)]:
        assert most_in_any_window(grants, length) == bound, length
    assert len(grants) == 60
    # The greedy asker is served at the rate: 60 grants take (60 - burst) / 10 s, less early.
    assert grants[-1] == pytest.approx((60 - burst) / 10 - early, abs=US)


@pytest_twisted.ensureDeferred
async def test_early_is_capped_at_a_quarter_of_the_token_interval(
    store: FleetStore, clock: FakeClock
) -> None:
    limits = RateLimits(rate=10.0, burst=1, early=1.0)  # asks for 1 s; 25 ms is the most
    grants = await greedy_grants(store, clock, limits, 4)
    assert grants == [0, 75000, 175000, 275000]


@pytest.mark.parametrize("burst", [1, 3])
@pytest_twisted.ensureDeferred
async def test_a_stalled_process_still_gets_at_most_the_burst_with_early_grants(
    store: FleetStore, clock: FakeClock, burst: int
) -> None:
    limits = RateLimits(rate=1.0, burst=burst, early=0.002)
    clock.set(T0 + 50.0)
    decisions = [await task(store.acquire("musicbrainz", limits)) for _ in range(10)]
    assert [d.granted for d in decisions] == [True] * burst + [False] * (10 - burst)
    assert decisions[-1].wait == 0.998


@pytest_twisted.ensureDeferred
async def test_a_granted_waiter_with_a_queued_send_takes_its_next_place_in_line(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    limits = RateLimits(rate=1.0, burst=1, grace=0.1)
    a, b, c = (make_store(name) for name in "abc")

    async def ask(store: FleetStore, t: float, more: bool) -> tuple[bool, float, float | None]:
        clock.set(T0 + t)
        decision = await task(store.acquire("musicbrainz", limits, queue_next=more))
        return (decision.granted, decision.wait, decision.next_wait)

    assert await ask(a, 0.0, True) == (True, 0.0, 1.0)  # a's next send: turn 1.0
    assert await ask(b, 0.5, True) == (False, 1.5, None)  # b comes after it: turn 2.0
    assert await ask(a, 1.0, True) == (True, 0.0, 2.0)  # behind b: turn 3.0
    assert await ask(b, 2.0, False) == (True, 0.0, None)  # nothing queued: no place taken
    assert await ask(a, 3.0, True) == (True, 0.0, 1.0)  # turn 4.0, never claimed:
    assert await ask(c, 4.1, False) == (False, 1.0, None)  # within the grace a keeps it
    assert await ask(c, 4.1 + US, False) == (True, 0.0, None)  # then it lapses


@pytest.mark.parametrize(("early", "asks"), [(0.0, 239), (0.002, 122)])
@pytest_twisted.ensureDeferred
async def test_three_processes_asking_late_need_one_ask_per_send_with_early_grants(
    make_store: Callable[..., FleetStore], clock: FakeClock, early: float, asks: int
) -> None:
    # 3 processes with sends queued, 10 req/s, burst 1; each ask reaches Redis 0.5 or 1.5 ms
    # after the turn it was told (timers and the network are late, never early). With early
    # grants every ask after each process's first is granted: 120 sends, 122 asks (b's and
    # c's first asks are told their turn; a's first is granted). Without, a waiter reaching
    # Redis less late than the one before finds its token not quite there and asks again:
    # 119 of the 120 sends need a second ask.
    limits = RateLimits(rate=10.0, burst=1, early=early)
    stores = {name: make_store(name) for name in "abc"}
    due = dict.fromkeys(stores, 0.0)
    late = [0.0015, 0.0005]
    grants: list[float] = []
    order: list[str] = []
    count = 0
    while len(grants) < 120:
        name = min(due, key=lambda n: (due[n], n))
        clock.set(T0 + due[name])
        decision = await task(stores[name].acquire("musicbrainz", limits, queue_next=True))
        count += 1
        if decision.granted:
            grants.append(due[name])
            order.append(name)
            assert decision.next_wait is not None
            wait = decision.next_wait
        else:
            wait = decision.wait
        due[name] = round(due[name] + wait + late[count % 2], 6)
    assert count == asks
    # a's second send was queued before b and c asked: served in arrival order, then in turn.
    assert "".join(order) == "a" + "abc" * 39 + "ab"
    assert most_in_any_window(grants, 0.1) <= 2 and most_in_any_window(grants, 1.0) <= 11
