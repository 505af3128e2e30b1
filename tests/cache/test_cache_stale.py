"""Stale-if-error and remembered refusals in the cache, on both backends (a real redis-server
and the embedded SQLite file), with an injected wall clock.

See test_cache_redis.py for why cache coroutines are wrapped with ``task()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from fixtures_redis import RedisServer
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from scrapy_apigw.cache import (
    EmbeddedCacheBackend,
    RedisCacheBackend,
    ResponseCache,
    cache_key,
)
from scrapy_apigw.cache.base import refusal_key
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TRACK = ApiCall("spotify", "track", "/tracks/4uLU6hMCjMI75M1A2tKUQC")
OK = ApiAnswer("ok", 200, {"id": "4uLU6hMCjMI75M1A2tKUQC", "name": "Strobe"})
EPOCH = 1_760_000_000.0


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


class WallClock:
    """An injectable ``time.time``."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["embedded", "redis"])
def backend_and_clock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Any, WallClock]]:
    clock = WallClock()
    if request.param == "embedded":
        yield EmbeddedCacheBackend(tmp_path / "c.sqlite3", clock=clock), clock
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flushall()
        # Redis expires by its own clock: the test's times stay far below the physical TTLs,
        # so what is checked is the logical expiry inside the value.
        yield RedisCacheBackend(server.url), clock


@pytest_twisted.ensureDeferred
async def test_an_expired_answer_is_a_miss_but_stands_in_until_the_stale_ttl_ends(
    backend_and_clock: tuple[Any, WallClock],
) -> None:
    backend, clock = backend_and_clock
    cache = ResponseCache(backend, stale_ttl=100.0, wall_clock=clock)
    try:
        await task(cache.put(TRACK, OK, 10.0))
        clock.now = EPOCH + 9.9
        fresh = await task(cache.get(TRACK))
        assert fresh is not None and fresh.data == OK.data and not fresh.stale
        assert not (await task(cache.get_stale(TRACK))).stale
        clock.now = EPOCH + 10.0
        assert await task(cache.get(TRACK)) is None
        stale = await task(cache.get_stale(TRACK))
        assert stale is not None and stale.stale and stale.from_cache and stale.data == OK.data
        clock.now = EPOCH + 109.9
        assert (await task(cache.get_stale(TRACK))).stale
        # Never stale beyond the stale TTL, whatever the backend still holds.
        clock.now = EPOCH + 110.0
        assert await task(cache.get_stale(TRACK)) is None
        assert await task(cache.get(TRACK)) is None
    finally:
        await task(cache.close())


@pytest_twisted.ensureDeferred
async def test_with_stale_ttl_zero_nothing_is_served_past_the_ttl(
    backend_and_clock: tuple[Any, WallClock],
) -> None:
    backend, clock = backend_and_clock
    cache = ResponseCache(backend, stale_ttl=0.0, wall_clock=clock)
    try:
        await task(cache.put(TRACK, OK, 10.0))
        clock.now = EPOCH + 10.0
        assert await task(cache.get_stale(TRACK)) is None
    finally:
        await task(cache.close())


@pytest_twisted.ensureDeferred
async def test_an_answer_is_kept_for_its_ttl_plus_the_stale_ttl(tmp_path: Path) -> None:
    import sqlite3

    clock = WallClock()
    path = tmp_path / "c.sqlite3"
    cache = ResponseCache(
        EmbeddedCacheBackend(path, clock=clock), stale_ttl=100.0, wall_clock=clock
    )
    try:
        await task(cache.put(TRACK, OK, 10.0))
    finally:
        await task(cache.close())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key, expires_at FROM apigw_cache").fetchall() == [
            (cache_key(TRACK), EPOCH + 110.0)
        ]


@pytest_twisted.ensureDeferred
async def test_a_refusal_is_remembered_for_its_ttl_under_a_key_naming_no_credential(
    backend_and_clock: tuple[Any, WallClock],
) -> None:
    backend, clock = backend_and_clock
    cache = ResponseCache(backend, wall_clock=clock)
    try:
        assert await task(cache.get_refusal("spotify", "audio_features")) is None
        await task(cache.put_refusal("spotify", "audio_features", {"at": 1}, 60.0))
        assert await task(cache.get_refusal("spotify", "audio_features")) == {"at": 1}
        assert await task(cache.get_refusal("spotify", "batch:tracks")) is None
        assert await task(cache.get_refusal("lastfm", "audio_features")) is None
        await task(cache.put_refusal("spotify", "batch:tracks", {"at": 2}, 0.0))  # 0: not kept
        assert await task(cache.get_refusal("spotify", "batch:tracks")) is None
        with pytest.raises(ValueError, match="refusal name"):
            await task(cache.put_refusal("spotify", "audio features?", {}, 60.0))
        if isinstance(backend, EmbeddedCacheBackend):
            clock.now = EPOCH + 60.0
            assert await task(cache.get_refusal("spotify", "audio_features")) is None
    finally:
        await task(cache.close())
    assert refusal_key("spotify", "audio_features") == "apigw:v1:spotify:refusal:audio_features"
