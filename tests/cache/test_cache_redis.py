"""The Redis backend and the response cache against a real redis-server (no fakes).

Cache coroutines call ``maybe_deferred_to_future``, which under the asyncio reactor returns an
asyncio Future: such code must run as an asyncio Task (as Scrapy runs pipelines), not inside the
Deferred-driven coroutine of a ``pytest_twisted.ensureDeferred`` test ("await wasn't used with
future"). ``task()`` (Scrapy's ``deferred_from_coro``) does that wrapping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from fixtures_redis import RedisServer, find_redis_server
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from scrapy_apigw.cache import (
    CacheError,
    RedisCacheBackend,
    cache_key,
    decode_answer,
    open_cache,
)
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TRACK = ApiCall("spotify", "track", "/tracks/4uLU6hMCjMI75M1A2tKUQC")
ISRC = ApiCall("musicbrainz", "isrc", "/isrc/GBAAA9900303", params=(("fmt", "json"),))
OK = ApiAnswer("ok", 200, {"id": "4uLU6hMCjMI75M1A2tKUQC", "name": "Never Gonna Give You Up"})
NOT_FOUND = ApiAnswer("not_found", 404)


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task, as Scrapy runs pipelines; fail after 10 s instead of
    hanging (pytest-timeout cannot interrupt the running reactor)."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


class Events(Counter[tuple[str, str]]):
    """Collects ``on_event`` calls: ``events["hit", "spotify"]``."""

    def __call__(self, event: str, provider: str) -> None:
        self[event, provider] += 1

    def of(self, event: str) -> int:
        """Number of *event* calls, all providers."""
        return sum(n for (name, _), n in self.items() if name == event)


def sleep(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor

    return deferLater(reactor, seconds, lambda: None)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest_twisted.ensureDeferred
async def test_round_trip_ok_and_not_found(redis_url: str, events: Events) -> None:
    cache = await task(open_cache(redis_url, on_event=events))
    try:
        assert await task(cache.get(TRACK)) is None
        await task(cache.put(TRACK, OK, 3600))
        await task(cache.put(ISRC, NOT_FOUND, 86400))
        assert await task(cache.get(TRACK)) == ApiAnswer("ok", 200, OK.data, from_cache=True)
        assert await task(cache.get(ISRC)) == ApiAnswer("not_found", 404, None, from_cache=True)
        other = ApiCall("spotify", "track", "/tracks/other")
        assert await task(cache.get(other)) is None
    finally:
        await task(cache.close())
    assert events == {
        ("miss", "spotify"): 2,
        ("store", "spotify"): 1,
        ("store", "musicbrainz"): 1,
        ("hit", "spotify"): 1,
        ("hit", "musicbrainz"): 1,
    }


@pytest_twisted.ensureDeferred
async def test_ttl_is_set_in_milliseconds(redis_url: str, redis_server: RedisServer) -> None:
    # stale_ttl=0: the backend keeps an entry for its TTL exactly (no stale-if-error margin).
    cache = await task(open_cache(redis_url, stale_ttl=0))
    try:
        await task(cache.put(TRACK, OK, 30 * 86400.0))
        await task(cache.put(ISRC, NOT_FOUND, 12.3456))
    finally:
        await task(cache.close())
    month_ms = 30 * 86400 * 1000
    assert month_ms - 5000 < redis_server.command("PTTL", cache_key(TRACK)) <= month_ms
    # 12345.6 ms rounds up to 12346 (PX takes whole milliseconds)
    assert 12346 - 5000 < redis_server.command("PTTL", cache_key(ISRC)) <= 12346


@pytest_twisted.ensureDeferred
async def test_uncacheable_answers_are_not_stored(
    redis_url: str, redis_server: RedisServer, events: Events
) -> None:
    cache = await task(open_cache(redis_url, on_event=events))
    try:
        await task(cache.put(TRACK, ApiAnswer("ok", 429, {}), 60))  # RFC 6585 §4
        await task(cache.put(TRACK, ApiAnswer("ok", 503, {}), 60))
        await task(cache.put(TRACK, ApiAnswer("forbidden", 403), 60))
        await task(cache.put(TRACK, ApiAnswer("rejected", 400, {"error": "bad"}), 60))
        await task(cache.put(TRACK, OK, 0))
        await task(cache.put(TRACK, ApiAnswer("ok", 200, {}, from_cache=True), 60))
    finally:
        await task(cache.close())
    assert redis_server.command("DBSIZE") == 0
    assert not events


@pytest_twisted.ensureDeferred
async def test_keys_are_namespaced_and_hold_no_credentials(
    redis_url: str, redis_server: RedisServer
) -> None:
    lastfm = ApiCall("lastfm", "info", "/", params=(("method", "track.getInfo"), ("mbid", "x")))
    a = await task(open_cache(redis_url, namespace="proj-a"))
    b = await task(open_cache(redis_url, namespace="proj-b"))
    try:
        await task(a.put(lastfm, OK, 60))
        assert await task(b.get(lastfm)) is None
        assert (await task(a.get(lastfm))).data == OK.data
        with pytest.raises(ValueError, match="credential"):
            await task(a.put(ApiCall("lastfm", "info", "/", params=(("api_key", "k"),)), OK, 60))
    finally:
        await task(a.close())
        await task(b.close())
    # Besides the answer, each namespace's hit and miss counts (added at close).
    assert sorted(redis_server.command("KEYS", "*")) == sorted(
        [cache_key(lastfm, "proj-a").encode(), b"proj-a:v1:counts", b"proj-b:v1:counts"]
    )
    assert redis_server.command("HGETALL", "proj-b:v1:counts") == [b"lastfm:info:misses", b"1"]
    keys = [cache_key(lastfm, "proj-a").encode()]
    assert keys[0].startswith(b"proj-a:v1:lastfm:info:")
    assert decode_answer(redis_server.command("GET", keys[0])) == replace(OK, from_cache=True)


@pytest.mark.parametrize("value", [b"\xff\x00 not json", b'{"kind": "ok"}'])
@pytest_twisted.ensureDeferred
async def test_corrupt_value_is_a_miss_and_is_deleted(
    redis_url: str, redis_server: RedisServer, events: Events, value: bytes
) -> None:
    redis_server.command("SET", cache_key(TRACK), value)
    cache = await task(open_cache(redis_url, on_event=events))
    try:
        assert await task(cache.get(TRACK)) is None
    finally:
        await task(cache.close())
    assert redis_server.command("EXISTS", cache_key(TRACK)) == 0
    assert events == {("miss", "spotify"): 1}


@pytest_twisted.ensureDeferred
async def test_redis_down_at_open_costs_no_waiting(
    redis_url: str, redis_server: RedisServer, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_apigw.cache")
    redis_server.stop()
    url = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    started = time.monotonic()
    cache = await task(open_cache(url, on_event=events, redis_timeout=1.0))
    opened = time.monotonic()
    try:
        for _ in range(50):
            assert await task(cache.get(TRACK)) is None
            await task(cache.put(TRACK, OK, 60))
    finally:
        await task(cache.close())
    done = time.monotonic()
    assert opened - started < 2.5  # one PING timeout
    assert done - opened < 1.0  # 100 operations skipped without touching Redis
    assert events == {("skipped", "spotify"): 100}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "cache unavailable" in message.lower()
    assert "continuing without it" in message
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in message
    assert "hunter2" not in caplog.text


@pytest_twisted.ensureDeferred
async def test_redis_killed_mid_run_then_restarted_recovers(
    redis_url: str, redis_server: RedisServer, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_apigw.cache")
    cache = await task(open_cache(redis_url, on_event=events, redis_timeout=0.3, retry_after=0.5))
    try:
        await task(cache.put(TRACK, OK, 60))
        assert await task(cache.get(TRACK)) is not None

        redis_server.stop()
        started = time.monotonic()
        for _ in range(50):
            assert await task(cache.get(TRACK)) is None
        outage = time.monotonic() - started
        # 3 failures of at most 0.3 s each open the breaker; the rest are skipped (or probes)
        assert outage < 2.0
        assert events.of("error") >= 3
        assert events.of("error") + events.of("skipped") == 50

        redis_server.start()  # empty: persistence is off
        restarted = time.monotonic()
        while time.monotonic() - restarted < 15:
            await task(cache.put(TRACK, OK, 60))
            if await task(cache.get(TRACK)) is not None:
                break
            await sleep(0.1)
        recovery = time.monotonic() - restarted
        assert await task(cache.get(TRACK)) == ApiAnswer("ok", 200, OK.data, from_cache=True)
    finally:
        await task(cache.close())
    print(f"outage: 50 gets in {outage:.2f} s; recovered {recovery:.2f} s after restart")
    assert recovery < 15
    assert "available again" in caplog.text


@pytest_twisted.ensureDeferred
async def test_frozen_redis_times_out_then_recovers(
    redis_url: str, redis_server: RedisServer, events: Events
) -> None:
    """A server that accepts but never answers (SIGSTOP): the reply timeout applies."""
    cache = await task(open_cache(redis_url, on_event=events, redis_timeout=0.3, retry_after=0.5))
    try:
        await task(cache.put(TRACK, OK, 60))
        redis_server.pause()
        started = time.monotonic()
        assert await task(cache.get(TRACK)) is None
        assert time.monotonic() - started < 2.0
        assert events["error", "spotify"] == 1
        redis_server.resume()
        deadline = time.monotonic() + 15
        while await task(cache.get(TRACK)) is None and time.monotonic() < deadline:
            await sleep(0.1)
        assert await task(cache.get(TRACK)) is not None
    finally:
        await task(cache.close())


@pytest_twisted.ensureDeferred
async def test_concurrent_gets_and_puts(redis_url: str, events: Events) -> None:
    cache = await task(open_cache(redis_url, on_event=events, redis_poolsize=2))
    calls = [ApiCall("discogs", "release", f"/releases/{i}") for i in range(200)]

    async def one(i: int) -> ApiAnswer | None:
        await cache.put(calls[i], ApiAnswer("ok", 200, {"id": i}), 60)
        return await cache.get(calls[i])

    try:
        answers = await task(asyncio.gather(*(one(i) for i in range(200))))
    finally:
        await task(cache.close())
    assert [a.data["id"] if a else None for a in answers] == list(range(200))
    assert events == {("store", "discogs"): 200, ("hit", "discogs"): 200}


@pytest_twisted.ensureDeferred
async def test_password_and_database(tmp_path: Path) -> None:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server")
    server = RedisServer(binary, tmp_path, extra_args=("--requirepass", "s3cr:t/pw"))
    server.start()
    try:
        good = f"redis://:s3cr%3At%2Fpw@127.0.0.1:{server.port}/3"
        cache = await task(open_cache(good))
        try:
            await task(cache.put(TRACK, OK, 60))
            assert await task(cache.get(TRACK)) is not None
        finally:
            await task(cache.close())
        auth = ("AUTH", "s3cr:t/pw")
        # The answer and the hit/miss counts, in database 3.
        assert server.commands(auth, ("SELECT", 3), ("DBSIZE",))[2] == 2
        assert server.commands(auth, ("DBSIZE",))[1] == 0

        backend = RedisCacheBackend(f"redis://:wrong-pw@127.0.0.1:{server.port}/3", timeout=0.5)
        try:
            with pytest.raises(CacheError) as info:
                await task(backend.open())
        finally:
            await task(backend.close())
        assert "could not auth" in str(info.value)  # says why, not just "not connected"
        assert "wrong-pw" not in str(info.value)
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_backend_round_trip_bytes(redis_url: str, redis_server: RedisServer) -> None:
    """Values come back as the exact bytes stored (txredisapi with charset=None)."""
    backend = RedisCacheBackend(redis_url)
    await task(backend.open())
    try:
        for value in (b"\x00\xff\xfe binary", b"123", "Été".encode()):
            await task(backend.set("k", value, 10))
            assert await task(backend.get("k")) == value
        await task(backend.delete("k"))
        assert await task(backend.get("k")) is None
    finally:
        await task(backend.close())
    with pytest.raises(CacheError, match="not open"):
        await task(backend.get("k"))
