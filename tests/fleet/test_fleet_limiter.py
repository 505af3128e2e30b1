"""SharedLimits, the per-process adapter: shared decisions through a real redis-server at a fake
clock (test-only script variants), and the fallback to the local share when Redis is killed.

Waits go through an injected sleep that only advances the fake clock, so every wait is asserted
at its exact value.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from fixtures_bad_redis import SlowProxy
from fixtures_redis import RedisServer
from fleet_helpers import task
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.fallback import LimiterMode
from scrapy_apigw.fleet import BreakerLimits, FleetStore, RateLimits
from scrapy_apigw.fleet.limiter import SharedLimits

ONE_PER_SECOND = RateLimits(rate=1.0, burst=1)


class Recorder:
    """The adapter's injected sleep (advances the fake clock) and stats counter."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []
        self.stats: Counter[str] = Counter()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.clock.advance(seconds)

    def inc(self, key: str, value: int) -> None:
        self.stats[key] += value


def real_sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor

    return deferLater(reactor, seconds, lambda: None)


@pytest.fixture
def recorder(clock: FakeClock) -> Recorder:
    return Recorder(clock)


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_two_processes_take_turns_at_the_fleet_rate(
    make_store: Callable[..., FleetStore], clock: FakeClock, recorder: Recorder
) -> None:
    a = SharedLimits(make_store("a"), 15.0, recorder.inc, clock)
    b = SharedLimits(make_store("b"), 15.0, recorder.inc, clock)
    await task(a.acquire("musicbrainz", ONE_PER_SECOND, recorder.sleep))
    assert recorder.sleeps == []  # the bucket starts full: one token
    await task(b.acquire("musicbrainz", ONE_PER_SECOND, recorder.sleep))
    assert recorder.sleeps == [1.0]  # b waited for the next token of the fleet's 1 req/s
    await task(a.acquire("musicbrainz", ONE_PER_SECOND, recorder.sleep))
    assert recorder.sleeps == [1.0, 1.0]
    assert a.fallback.mode is LimiterMode.SHARED
    assert recorder.stats == {}


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_a_process_with_sends_queued_asks_the_fleet_once_per_send(
    make_store: Callable[..., FleetStore], clock: FakeClock, recorder: Recorder
) -> None:
    # With more sends queued, each grant takes the next place in line: the next acquire sleeps
    # until that turn, then its one ask is granted. Without, each send after the first asks,
    # is told the wait, sleeps it and asks again.
    queued_store, single_store = make_store("a"), make_store("b")
    queued = SharedLimits(queued_store, 15.0, recorder.inc, clock)
    single = SharedLimits(single_store, 15.0, recorder.inc, clock)
    for _ in range(5):
        await task(queued.acquire("musicbrainz", ONE_PER_SECOND, recorder.sleep, more=True))
    assert recorder.sleeps == [1.0] * 4
    assert queued_store.round_trips["rate"].count == 5
    for _ in range(5):
        await task(single.acquire("lastfm", ONE_PER_SECOND, recorder.sleep))
    assert recorder.sleeps == [1.0] * 8
    assert single_store.round_trips["rate"].count == 9


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_a_pause_seen_by_one_process_holds_the_other_until_the_same_instant(
    make_store: Callable[..., FleetStore], clock: FakeClock, recorder: Recorder
) -> None:
    a = SharedLimits(make_store("a"), 15.0, recorder.inc, clock)
    b = SharedLimits(make_store("b"), 15.0, recorder.inc, clock)
    limits = RateLimits(rate=10.0, burst=5)
    paused = a.pause("discogs", 7.5, limits)
    assert paused is not None
    await paused
    clock.advance(2.0)
    await task(b.acquire("discogs", limits, recorder.sleep))
    assert recorder.sleeps == [5.5]  # 7.5 s after a's pause, not after b's ask


def late_replies(store: FleetStore, clock: FakeClock, lateness: list[float]) -> FleetStore:
    """*store*, its acquire replies reaching this process ``lateness[i]`` s after the server
    decided (the real Redis call, then the fake clock moved on: a stalled reactor)."""
    real = store.acquire

    async def acquire(*args: Any, **kwargs: Any) -> Any:
        decision = await real(*args, **kwargs)
        if lateness:
            clock.advance(lateness.pop(0))
        return decision

    store.acquire = acquire  # type: ignore[method-assign]
    return store


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_a_grant_whose_reply_came_late_is_left_unused_and_asked_again(
    make_store: Callable[..., FleetStore], clock: FakeClock, recorder: Recorder
) -> None:
    # Rate 10, burst 1: stale after 25 ms. The grant made at 0 reaches the process at 0.03;
    # sent then, it would meet the fleet's next grant at 0.1 within 70 ms.
    store = late_replies(make_store("a"), clock, [0.03])
    limits = RateLimits(rate=10.0, burst=1)
    a = SharedLimits(store, 15.0, recorder.inc, clock)
    start = clock()
    await task(a.acquire("musicbrainz", limits, recorder.sleep))
    assert recorder.sleeps == [0.07]  # told at 0.03 to wait for the token due at 0.1
    assert clock() - start == pytest.approx(0.1)
    assert recorder.stats == {"apigw/musicbrainz/limits/stale_grants": 1}
    assert store.round_trips["rate"].count == 3


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_a_reply_within_a_quarter_interval_and_a_second_late_grant_are_used(
    make_store: Callable[..., FleetStore], clock: FakeClock, recorder: Recorder
) -> None:
    limits = RateLimits(rate=10.0, burst=1)
    store = late_replies(make_store("a"), clock, [0.02, 0.03, 0.03, 0.03])
    a = SharedLimits(store, 15.0, recorder.inc, clock)
    await task(a.acquire("musicbrainz", limits, recorder.sleep))
    assert (recorder.sleeps, recorder.stats) == ([], {})  # 20 ms late: used
    # The next: granted at 0.1 (after a 0.08 s wait), 30 ms late: left; asked at 0.13, told
    # 0.07, reached at 0.16 (late too), slept to 0.23, granted, late again: used this time
    # (one grant left unused per acquire, so a process that stalls on every reply still sends).
    await task(a.acquire("musicbrainz", limits, recorder.sleep))
    assert recorder.sleeps == [0.08, 0.07]
    assert recorder.stats == {"apigw/musicbrainz/limits/stale_grants": 1}


@pytest_twisted.async_yield_fixture
async def fleet_of_three(
    own_server: RedisServer, clock: FakeClock, recorder: Recorder
) -> AsyncIterator[list[SharedLimits]]:
    stores = [
        FleetStore.connect(own_server.url, fleet="t", timeout=0.3, process_id=p, clock=clock)
        for p in "abc"
    ]
    limiters = [SharedLimits(store, 15.0, recorder.inc, clock) for store in stores]
    yield limiters
    for store in stores:
        await task(store.close())


@pytest_twisted.ensureDeferred
async def test_redis_killed_falls_back_to_the_local_share_then_back_to_shared(
    fleet_of_three: list[SharedLimits],
    own_server: RedisServer,
    clock: FakeClock,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = fleet_of_three[0]
    limits = RateLimits(rate=3.0, burst=3)
    for limiter in fleet_of_three:
        await task(limiter.heartbeat())
    assert await task(a.heartbeat()) == 3
    assert a.fallback.processes == 3
    own_server.stop()
    caplog.set_level(logging.INFO, logger="scrapy_apigw.fleet.limiter")

    # The outage: the local share is 3 / 3 = 1 req/s, burst 1, its first token 1 s away.
    await task(a.acquire("spotify", limits, recorder.sleep))
    assert a.fallback.mode is LimiterMode.FALLBACK
    assert recorder.sleeps == [1.0]
    assert await task(a.heartbeat()) == 0  # fails too, no second warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "back to this process's share of its rate (1/3)" in warnings[0].getMessage()
    breaker = BreakerLimits(failure_threshold=1, open_timeout=1.0, success_threshold=1)
    assert await task(a.breaker("allow", "spotify", breaker)) is None  # the local one decides
    assert recorder.stats == {"apigw/fleet/outages": 1, "apigw/spotify/limits/fallback": 1}

    # Before the next probe (every 15 / 3 = 5 s) nothing is asked of Redis.
    await task(a.acquire("spotify", limits, recorder.sleep))
    assert recorder.sleeps == [1.0, 1.0]
    await task(a.acquire("spotify", limits, recorder.sleep))
    assert recorder.sleeps == [1.0, 1.0, 1.0]
    assert a.fallback.probes == 0

    own_server.start()
    deadline = time.monotonic() + 10.0
    while a.fallback.mode is LimiterMode.FALLBACK:  # txredisapi reconnects with a backoff
        assert time.monotonic() < deadline, "the limiter never went back to shared"
        clock.advance(5.0)
        await task(a.acquire("spotify", limits, recorder.sleep))
        await real_sleep(0.1)
    # For one probe interval the local share stays a cap (the others may still use theirs):
    # the shared bucket (3 req/s, full after the restart) would grant these at once.
    del recorder.sleeps[:]
    for _ in range(3):
        await task(a.acquire("spotify", limits, recorder.sleep))
    assert recorder.sleeps == [1.0, 1.0]
    clock.advance(5.0)
    for _ in range(3):
        await task(a.acquire("spotify", limits, recorder.sleep))
    assert recorder.sleeps == [1.0, 1.0]  # then the shared bucket alone: its 3 tokens
    assert recorder.stats["apigw/fleet/recoveries"] == 1
    assert recorder.stats["apigw/fleet/outages"] == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert any("back to the shared limits" in r.getMessage() for r in caplog.records)


async def until_shared(limiter: SharedLimits) -> int:
    """Beat until Redis answers (txredisapi reconnects with a backoff); the count seen."""
    deadline = time.monotonic() + 10.0
    while (count := await task(limiter.heartbeat())) == 0:
        assert time.monotonic() < deadline, "Redis never answered again"
        await real_sleep(0.1)
    return count


@pytest_twisted.ensureDeferred
async def test_after_a_restart_the_share_still_counts_the_processes_seen_before_it(
    fleet_of_three: list[SharedLimits],
    own_server: RedisServer,
    clock: FakeClock,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A restarted Redis has lost the heartbeats: the first process to beat there counts
    # itself alone, while the other two are still live and sending.
    a = fleet_of_three[0]
    for limiter in fleet_of_three:
        await task(limiter.heartbeat())
    assert await task(a.heartbeat()) == 3
    own_server.stop()
    own_server.start()
    clock.advance(1.0)  # within the heartbeat ttl (15 s) of the count of 3
    assert await until_shared(a) == 1
    assert a.fallback.processes == 3
    own_server.stop()  # the next outage
    caplog.set_level(logging.WARNING, logger="scrapy_apigw.fleet.limiter")
    del recorder.sleeps[:]
    limits = RateLimits(rate=3.0, burst=3)
    await task(a.acquire("spotify", limits, recorder.sleep))
    assert a.fallback.mode is LimiterMode.FALLBACK
    assert recorder.sleeps == [1.0]  # 3 req/s over 3 processes: 1 req/s, not 3 req/s
    assert "share of its rate (1/3)" in caplog.records[-1].getMessage()
    # Once a whole ttl has passed with one process counted, the share is the whole rate.
    own_server.start()
    clock.advance(16.0)
    await until_shared(a)
    clock.advance(1.0)
    assert await until_shared(a) == 1
    assert a.fallback.processes == 1


@pytest.fixture
def slow_proxy(own_server: RedisServer) -> Iterator[SlowProxy]:
    """The test's own redis-server behind a proxy that holds its replies (none at first)."""
    proxy = SlowProxy(own_server.port)
    yield proxy
    proxy.stop()


@pytest_twisted.ensureDeferred
async def test_a_slow_redis_costs_one_timeout_then_the_local_share_until_it_answers_in_time(
    slow_proxy: SlowProxy, clock: FakeClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # Every reply 1 s late, the fleet's timeout 0.3 s: Redis answers, but too late to decide.
    store = FleetStore.connect(slow_proxy.url, fleet="t", timeout=0.3, clock=clock)
    limiter = SharedLimits(store, 15.0, recorder.inc, clock)
    limits = RateLimits(rate=2.0, burst=2)
    caplog.set_level(logging.WARNING, logger="scrapy_apigw.fleet.limiter")
    try:
        await task(limiter.acquire("discogs", limits, recorder.sleep))  # connects: shared
        assert (limiter.fallback.mode, recorder.sleeps) == (LimiterMode.SHARED, [])
        slow_proxy.delay = 1.0
        started = time.monotonic()
        await task(limiter.acquire("discogs", limits, recorder.sleep))
        waited = time.monotonic() - started
        assert 0.25 <= waited < 0.9, waited  # the timeout, not the 1 s delay
        assert limiter.fallback.mode is LimiterMode.FALLBACK
        assert recorder.sleeps == [0.5]  # the local share (alone: 2 req/s), its first token
        # Until the next probe (every 15 / 3 = 5 s) the slow Redis is not asked at all.
        started = time.monotonic()
        for _ in range(3):
            await task(limiter.acquire("discogs", limits, recorder.sleep))
        assert time.monotonic() - started < 0.25  # asking would cost a 0.3 s timeout each
        assert recorder.sleeps == [0.5, 0.5, 0.5, 0.5]
        # A probe against the slow Redis fails within the timeout too.
        clock.advance(5.0)
        started = time.monotonic()
        await task(limiter.acquire("discogs", limits, recorder.sleep))
        assert time.monotonic() - started < 0.9
        assert limiter.fallback.mode is LimiterMode.FALLBACK
        slow_proxy.delay = 0.0
        deadline = time.monotonic() + 10.0
        while limiter.fallback.mode is LimiterMode.FALLBACK:
            assert time.monotonic() < deadline, "the limiter never went back to shared"
            clock.advance(5.0)
            await task(limiter.acquire("discogs", limits, recorder.sleep))
            await real_sleep(0.1)
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        # The store's bound or txredisapi's reply timeout (the same 0.3 s), whichever fires first.
        assert re.search(r"no reply within 0\.3 s|response in 0\.3 seconds", warning), warning
        assert "APIGW_REDIS_URL" in warning
        assert recorder.stats["apigw/fleet/outages"] == 1
        assert recorder.stats["apigw/discogs/limits/fallback"] == 1
        assert recorder.stats["apigw/fleet/recoveries"] == 1
    finally:
        await task(limiter.stop())


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_one_warning_naming_the_setting_not_the_password(
    password_server: RedisServer,
    clock: FakeClock,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://:wrong-pass-0815@127.0.0.1:{password_server.port}/0"
    limiter = SharedLimits(
        FleetStore.connect(url, fleet="t", timeout=0.3), 15.0, recorder.inc, clock
    )
    caplog.set_level(logging.WARNING, logger="scrapy_apigw.fleet.limiter")
    try:
        assert await task(limiter.heartbeat()) == 0
        await task(limiter.acquire("spotify", ONE_PER_SECOND, recorder.sleep))
        [warning] = [r.getMessage() for r in caplog.records]
        assert "APIGW_REDIS_URL" in warning
        assert "WRONGPASS" in warning or "invalid password" in warning
        assert "wrong-pass-0815" not in warning and "right-pass-4711" not in warning
    finally:
        await task(limiter.stop())


def test_the_heartbeat_ttl_must_be_positive(store: FleetStore) -> None:
    with pytest.raises(ValueError, match="heartbeat_ttl"):
        SharedLimits(store, 0.0, lambda key, value: None, FakeClock())
