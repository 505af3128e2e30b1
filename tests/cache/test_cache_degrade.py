"""How the response cache degrades when its backend fails: exact events, warnings and skip
windows, with an injected clock and a real redis-server that the tests stop and start.

See test_cache_redis.py for why cache coroutines are wrapped with ``task()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import pytest
import pytest_twisted
from fixtures_redis import RedisServer
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from scrapy_apigw.cache import RedisCacheBackend, ResponseCache
from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TRACK = ApiCall("lastfm", "info", "/", params=(("method", "track.getInfo"), ("mbid", "m1")))
OK = ApiAnswer("ok", 200, {"track": {"toptags": {"tag": [{"name": "house"}]}}})


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task, as Scrapy runs pipelines; fail after 10 s instead of
    hanging (pytest-timeout cannot interrupt the running reactor)."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="scrapy_apigw.cache")
    return caplog


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def make_cache(url: str, clock: FakeClock, events: Counter[str]) -> ResponseCache:
    return ResponseCache(
        RedisCacheBackend(url, timeout=0.2),
        failure_threshold=3,
        retry_after=5.0,
        clock=clock,
        on_event=lambda event, provider: events.update([f"{event}:{provider}"]),
    )


@pytest_twisted.ensureDeferred
async def test_down_at_open_skip_window_probe_and_recovery(
    redis_url: str, redis_server: RedisServer, caplog_info: pytest.LogCaptureFixture
) -> None:
    clock, events = FakeClock(), Counter[str]()
    redis_server.stop()
    cache = make_cache(redis_url, clock, events)
    await task(cache.open())  # fails after 0.2 s: the backend is skipped at once
    assert not cache.available
    assert len(warnings(caplog_info)) == 1
    for _ in range(10):
        assert await task(cache.get(TRACK)) is None
    clock.advance(4.999)
    assert await task(cache.get(TRACK)) is None
    assert events == {"skipped:lastfm": 11}
    assert len(warnings(caplog_info)) == 1

    clock.advance(0.001)  # skip window over: one probe, which fails
    assert await task(cache.get(TRACK)) is None
    assert events["error:lastfm"] == 1
    assert len(warnings(caplog_info)) == 2  # 5 s since the first warning
    assert await task(cache.get(TRACK)) is None  # skipped again, for 5 more seconds
    assert events["skipped:lastfm"] == 12

    redis_server.start()
    clock.advance(5.0)
    deadline = time.monotonic() + 15
    # txredisapi reconnects in the background (about 1 s backoff); a probe before that fails
    # fast ("no reply") and reopens the window, so advance past it and probe again.
    while await task(cache.get(TRACK)) is None and not cache.available:
        assert time.monotonic() < deadline, "no recovery"
        await asyncio_sleep(0.2)
        clock.advance(5.0)
    assert cache.available
    await task(cache.put(TRACK, OK, 60))
    assert await task(cache.get(TRACK)) == ApiAnswer("ok", 200, OK.data, from_cache=True)
    await task(cache.close())
    assert events["store:lastfm"] == 1 and events["hit:lastfm"] == 1
    assert "available again" in caplog_info.text


@pytest_twisted.ensureDeferred
async def test_consecutive_failures_open_the_skip_window(
    redis_url: str, redis_server: RedisServer, caplog_info: pytest.LogCaptureFixture
) -> None:
    clock, events = FakeClock(), Counter[str]()
    cache = make_cache(redis_url, clock, events)
    await task(cache.open())
    await task(cache.put(TRACK, OK, 60))
    redis_server.stop()
    for _ in range(3):
        assert await task(cache.get(TRACK)) is None
        assert cache.available or events["error:lastfm"] == 3
    assert not cache.available
    assert await task(cache.get(TRACK)) is None
    assert await task(cache.put(TRACK, OK, 60)) is None
    assert events == {"store:lastfm": 1, "error:lastfm": 3, "skipped:lastfm": 2}
    assert len(warnings(caplog_info)) == 1  # the first failure; the next two are quiet
    assert "Skipping cache" in caplog_info.text

    clock.advance(5.0)
    assert await task(cache.get(TRACK)) is None  # the probe fails
    await task(cache.close())
    assert events["error:lastfm"] == 4
    assert len(warnings(caplog_info)) == 2
    assert "(2 other failure(s) since the last warning)" in warnings(caplog_info)[1]


@pytest_twisted.ensureDeferred
async def test_concurrent_lookups_when_redis_dies_wait_one_timeout(
    redis_url: str, redis_server: RedisServer, caplog_info: pytest.LogCaptureFixture
) -> None:
    """Lookups already under way when Redis dies each wait one timeout, in parallel; later ones
    are skipped."""
    clock, events = FakeClock(), Counter[str]()
    cache = make_cache(redis_url, clock, events)
    await task(cache.open())
    redis_server.stop()
    started = time.monotonic()
    answers = await task(asyncio.gather(*(cache.get(TRACK) for _ in range(50))))
    elapsed = time.monotonic() - started
    assert answers == [None] * 50
    assert elapsed < 0.2 + 1.5  # in parallel: one after another they would take 50 * 0.2 s
    assert events == {"error:lastfm": 50}
    assert len(warnings(caplog_info)) == 1
    assert await task(cache.get(TRACK)) is None
    assert events["skipped:lastfm"] == 1
    await task(cache.close())


def asyncio_sleep(seconds: float) -> Deferred[None]:
    return task(asyncio.sleep(seconds))
