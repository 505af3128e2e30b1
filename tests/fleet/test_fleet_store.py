"""The fleet store against real redis-servers: heartbeats, the real ``TIME`` clock, script
loading (``NOSCRIPT``), key layout and expiry, and every way Redis can fail (down, frozen,
restarted, wrong password) surfacing as one ``FleetUnavailable`` within the timeout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_twisted
from fixtures_redis import RedisServer
from fleet_helpers import US, task
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.ratelimit import Quota
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.fleet import BreakerLimits, FleetStore, FleetUnavailable, RateLimits

T0 = 1000.0
LIMITS = RateLimits(rate=10.0, burst=5)


def sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor

    return deferLater(reactor, seconds, lambda: None)


@pytest_twisted.async_yield_fixture
async def own_store(own_server: RedisServer) -> AsyncIterator[FleetStore]:
    store = FleetStore.connect(own_server.url, fleet="test", timeout=0.3)
    yield store
    await task(store.close())


async def until_answers(store: FleetStore, within: float = 10.0) -> int:
    """Ask until Redis answers again (it reconnects with backoff); return the failed asks."""
    deadline = time.monotonic() + within
    failures = 0
    while True:
        try:
            await task(store.acquire("discogs", LIMITS))
            return failures
        except FleetUnavailable:
            failures += 1
            if time.monotonic() > deadline:
                raise
            await sleep(0.1)


# -- heartbeats -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_heartbeats_count_live_processes_and_forget_them_after_the_ttl(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a, b, c = (make_store(name) for name in "abc")
    steps = [
        # t, who beats, live processes it is told
        (0.0, a, 1),
        (5.0, b, 2),
        (9.0, c, 3),
        (10.0 - US, b, 3),  # a beat at 0 is live until 10, excluded
        (10.0, b, 2),
        (14.0, c, 2),
        (19.0, b, 2),  # c beat at 14: still live
        (24.0, a, 2),  # a is back; c (beat at 14) is gone
    ]
    for t, store, live in steps:
        clock.set(T0 + t)
        assert await task(store.heartbeat(ttl=10.0)) == live, t


@pytest_twisted.ensureDeferred
async def test_a_process_that_leaves_is_no_longer_counted(
    make_store: Callable[..., FleetStore],
) -> None:
    a, b = make_store("a"), make_store("b")
    assert await task(a.heartbeat(ttl=10.0)) == 1
    assert await task(b.heartbeat(ttl=10.0)) == 2
    await task(b.leave())
    assert await task(a.heartbeat(ttl=10.0)) == 1


# -- the server's clock -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_decisions_are_taken_at_the_servers_time(
    make_store: Callable[..., FleetStore], redis_server: RedisServer
) -> None:
    store = make_store(clock=None)
    limits = RateLimits(rate=1.0, burst=1)
    before = redis_server.command("TIME")
    first = await task(store.acquire("musicbrainz", limits))
    after = redis_server.command("TIME")
    assert first.granted

    def seconds(reply: list[bytes]) -> float:
        return int(reply[0]) + int(reply[1]) / 1e6

    assert seconds(before) <= first.server_time <= seconds(after)
    told = await task(store.acquire("musicbrainz", limits))
    # Freeze the server for 0.3 s between two decisions: the wait shrinks by the server's time.
    redis_server.command("DEBUG", "SLEEP", "0.3")
    again = await task(store.acquire("musicbrainz", limits))
    elapsed = again.server_time - told.server_time
    assert not told.granted and not again.granted
    assert 0.3 <= elapsed < 1.0
    assert told.wait - again.wait == pytest.approx(elapsed, abs=2 * US)
    assert told.server_time + told.wait == pytest.approx(again.server_time + again.wait, abs=US)


@pytest_twisted.ensureDeferred
async def test_the_breaker_runs_on_the_servers_time(
    make_store: Callable[..., FleetStore], redis_server: RedisServer
) -> None:
    store = make_store(clock=None)
    limits = BreakerLimits(failure_threshold=1, open_timeout=0.2, success_threshold=1)
    opened = await task(store.record_failure("spotify", limits))
    assert opened.state.value == "open" and 0 < opened.retry_in <= 0.2
    redis_server.command("DEBUG", "SLEEP", "0.25")
    assert (await task(store.allow("spotify", limits))).state.value == "half_open"


# -- scripts ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scripts_are_loaded_once_and_again_after_script_flush(
    make_store: Callable[..., FleetStore], redis_server: RedisServer
) -> None:
    store = make_store(clock=None)
    limits = RateLimits(rate=1e-9, burst=5)  # no visible refill during the test
    redis_server.command("SCRIPT", "FLUSH")
    tokens = [(await task(store.acquire("discogs", limits, waiter=f"w{i}"))).tokens for i in "12"]
    assert (tokens, store.script_loads) == ([4.0, 3.0], 1)  # NOSCRIPT once, then EVALSHA
    redis_server.command("SCRIPT", "FLUSH")
    tokens = [(await task(store.acquire("discogs", limits, waiter=f"w{i}"))).tokens for i in "34"]
    assert (tokens, store.script_loads) == ([2.0, 1.0], 2)  # state kept, script reloaded


@pytest_twisted.ensureDeferred
async def test_after_a_restart_the_store_reconnects_and_reloads_its_scripts(
    own_server: RedisServer, own_store: FleetStore
) -> None:
    assert (await task(own_store.acquire("discogs", LIMITS))).granted
    loads = own_store.script_loads
    own_server.stop()
    with pytest.raises(FleetUnavailable):
        await task(own_store.acquire("discogs", LIMITS))
    own_server.start()
    await until_answers(own_store)
    assert own_store.script_loads == loads + 1


@pytest_twisted.ensureDeferred
async def test_a_connected_store_survives_script_flush_loading_each_script_once(
    redis_url: str, redis_server: RedisServer
) -> None:
    # FleetStore.connect's RedisClient pool (2 connections): after SCRIPT FLUSH the first
    # EVALSHA meets NOSCRIPT and one EVAL loads the script for every connection; the rest of
    # the calls are one EVALSHA each.
    redis_server.command("SCRIPT", "FLUSH")  # the session server may know it already
    store = FleetStore.connect(redis_url, fleet="test", timeout=0.5)
    limits = RateLimits(rate=1e-9, burst=5)
    try:
        assert (await task(store.acquire("discogs", limits, waiter="w0"))).tokens == 4.0
        redis_server.command("SCRIPT", "FLUSH")
        redis_server.command("CONFIG", "RESETSTAT")
        tokens = [
            (await task(store.acquire("discogs", limits, waiter=f"w{i}"))).tokens for i in "1234"
        ]
        stats = redis_server.command("INFO", "commandstats").decode()
    finally:
        await task(store.close())
    assert tokens == [3.0, 2.0, 1.0, 0.0]
    assert store.script_loads == 2  # the first call of all, and once after the flush
    assert "cmdstat_eval:calls=1," in stats
    assert "cmdstat_evalsha:calls=4," in stats  # one NOSCRIPT, then three decisions
    assert "script" not in stats.replace("cmdstat_evalsha", "").replace("cmdstat_eval", "")
    assert store.round_trips["rate"].count == 5  # one per acquire, the reload included


# -- failures ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_frozen_redis_raises_fleet_unavailable_within_the_timeout(
    own_server: RedisServer, own_store: FleetStore
) -> None:
    assert (await task(own_store.acquire("discogs", LIMITS))).granted
    own_server.pause()  # SIGSTOP: connections stay open, nothing is answered
    for call in (
        own_store.acquire("discogs", LIMITS),
        own_store.allow("discogs", BreakerLimits(3, 30.0, 1)),
        own_store.heartbeat(10.0),
    ):
        start = time.monotonic()
        with pytest.raises(FleetUnavailable, match=r"no reply within 0\.3 s|Not received"):
            await task(call)
        assert 0.25 <= time.monotonic() - start < 2.0  # the timeout, not forever
    own_server.resume()
    await until_answers(own_store)


@pytest_twisted.ensureDeferred
async def test_a_redis_that_is_down_raises_fleet_unavailable_within_the_timeout(
    own_server: RedisServer, own_store: FleetStore
) -> None:
    own_server.stop()
    start = time.monotonic()
    with pytest.raises(FleetUnavailable) as raised:
        await task(own_store.acquire("discogs", LIMITS))
    assert time.monotonic() - start < 2.0
    assert f"127.0.0.1:{own_server.port}" in str(raised.value)


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_one_clear_error_without_the_password(
    password_server: RedisServer,
) -> None:
    url = f"redis://:wrong-pass-0815@127.0.0.1:{password_server.port}/0"
    store = FleetStore.connect(url, fleet="test", timeout=0.3)
    try:
        with pytest.raises(FleetUnavailable) as raised:
            await task(store.acquire("discogs", LIMITS))
        message = str(raised.value)
        assert "WRONGPASS" in message or "invalid password" in message
        assert "wrong-pass-0815" not in message and "right-pass-4711" not in message
        assert ":***@127.0.0.1" in message
    finally:
        await task(store.close())


# -- keys -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_every_key_is_namespaced_per_fleet_and_provider_and_expires(
    make_store: Callable[..., FleetStore], redis_server: RedisServer, clock: FakeClock
) -> None:
    store = make_store(clock=None, breaker_ttl=600.0)
    window = RateLimits(rate=1.0, burst=2, window_limit=5, window=60.0)
    await task(store.acquire("discogs", window))
    await task(store.acquire("discogs", window))
    await task(store.acquire("discogs", window, waiter="b"))  # in line for 1 s
    await task(store.learn_quota("discogs", Quota(limit=25, used=1, remaining=24), ttl=60.0))
    await task(store.record_failure("discogs", BreakerLimits(1, 30.0, 1)))
    await task(store.heartbeat(ttl=20.0))
    keys = sorted(k.decode() for k in redis_server.command("KEYS", "*"))
    prefix = "apigw:fleet:{test:discogs}:"
    assert keys == [
        f"{prefix}breaker",
        f"{prefix}bucket",
        f"{prefix}line",
        f"{prefix}quota",
        f"{prefix}window",
        "apigw:fleet:{test}:processes",
    ]
    ttl = {key: redis_server.command("PTTL", key) for key in keys}
    # Each key lives until its absence means the same (+1 s): bucket full again in 2 s, line
    # turn in 1 s, window sends out in 60 s; quota and heartbeats as told; breaker: its ttl.
    assert 2500 < ttl[f"{prefix}bucket"] <= 3000
    assert 1500 < ttl[f"{prefix}line"] <= 2100
    assert 60500 < ttl[f"{prefix}window"] <= 61000
    assert 59500 < ttl[f"{prefix}quota"] <= 60000
    assert 600500 < ttl[f"{prefix}breaker"] <= 601000
    assert 19500 < ttl["apigw:fleet:{test}:processes"] <= 20000
    # Redis Cluster hashes only the part between the first "{" and the next "}": one slot.
    assert {k[k.index("{") + 1 : k.index("}")] for k in keys} == {"test:discogs", "test"}


@pytest_twisted.ensureDeferred
async def test_a_store_decodes_replies_of_a_bytes_connection_too(
    redis_url: str, clock: FakeClock
) -> None:
    # FleetStore.connect's pool answers bytes (charset=None); the fixtures' pool answers str
    # and converts numbers: both decode to the same decisions.
    store = FleetStore.connect(redis_url, fleet="test", clock=clock)
    try:
        clock.set(T0)
        decisions = [await task(store.acquire("discogs", LIMITS)) for _ in range(6)]
        assert [d.tokens for d in decisions] == [4.0, 3.0, 2.0, 1.0, 0.0, 0.0]
        assert (decisions[-1].granted, decisions[-1].wait) == (False, 0.1)
        breaker = await task(store.allow("discogs", BreakerLimits(3, 30.0, 1)))
        assert breaker.allowed and breaker.permit is None
    finally:
        await task(store.close())


def test_invalid_names_and_timeouts_are_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="APIGW_FLEET"):
        FleetStore(object(), fleet="my {fleet}")
    with pytest.raises(ConfigError, match="timeout"):
        FleetStore(object(), fleet="test", timeout=0)
    with pytest.raises(ConfigError, match="redis:// or rediss://"):
        FleetStore.connect("http://localhost:6379", fleet="test")
