"""``/health`` and ``/admin/...`` over real sockets (treq), on the fleet's state in a real
Redis (:class:`RedisState`, as ``apigw serve`` runs them): every endpoint with and without the
token, 401 changing nothing, 403 when off, 404, 405, and no credential in any answer or log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
from admin_helpers import TOKEN, Server, gateway_settings, task

from scrapy_apigw.cache import RedisCacheBackend, ResponseCache
from scrapy_apigw.ops.admin import ops_children
from scrapy_apigw.ops.state import RedisState, breaker_limits, rate_limits
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

MB = "musicbrainz"
PROVIDERS = {MB: {"failure_threshold": 2, "open_timeout": 600}}
SEARCH = ApiCall(MB, "search", "/recording", params=(("query", "x"),))

ADMIN_ROUTES = [
    ("GET", "/admin/rate-limits"),
    ("POST", f"/admin/rate-limits/{MB}/reset"),
    ("GET", "/admin/circuit-breakers"),
    ("POST", f"/admin/circuit-breakers/{MB}/reset"),
    ("POST", "/admin/circuit-breakers/reset-all"),
    ("GET", "/admin/cache/stats"),
    ("POST", f"/admin/cache/invalidate?provider={MB}&data_type=search"),
]


async def make_server(redis_url: str, **settings: Any) -> tuple[Server, RedisState]:
    values = {"APIGW_REDIS_URL": redis_url, "APIGW_PROVIDERS": PROVIDERS, **settings}
    state = RedisState(gateway_settings(values))
    await task(state.open())
    return Server(ops_children(state)), state


@pytest_twisted.async_yield_fixture
async def served(redis_url: str) -> AsyncIterator[tuple[Server, RedisState]]:
    server, state = await make_server(redis_url, APIGW_ADMIN_TOKEN=TOKEN)
    yield server, state
    await server.close()
    await task(state.close())


async def trip(state: RedisState) -> None:
    assert state.store is not None
    limits = breaker_limits(state.providers[MB])
    for _ in range(2):
        await task(state.store.record_failure(MB, limits))


async def breaker_state(state: RedisState) -> str:
    assert state.store is not None
    return (await task(state.store.peek(MB, breaker_limits(state.providers[MB])))).state.value


@pytest_twisted.ensureDeferred
async def test_health_reports_status_redis_adapters_and_each_breaker_with_counts(served) -> None:
    server, state = served
    answer = await server.call("GET", "/health", token=None)
    assert answer.status == 200
    report = answer.json
    assert report["status"] == "healthy"
    assert report["redis"] == {"status": "ok", "shared_limits": True, "fleet": "apigw"}
    assert sorted(report["adapters"]) == sorted(state.providers)
    assert report["adapters"][MB]["circuit"] == "closed"
    await trip(state)
    report = (await server.call("GET", "/health", token=None)).json
    assert report["status"] == "degraded"
    mb = report["circuit_breakers"][MB]
    assert (mb["state"], mb["source"], mb["failures"], mb["opened"]) == ("open", "fleet", 2, 1)
    assert (mb["failure_threshold"], mb["success_threshold"], mb["open_timeout"]) == (2, 2, 600)
    assert mb["last_failure_time"].endswith("Z") and 590 < mb["retry_in"] <= 600
    assert report["circuit_breakers"]["discogs"]["last_failure_time"] is None
    bad = await server.call("POST", "/health", token=None)
    assert (bad.status, bad.headers["allow"]) == (405, "GET, HEAD")


@pytest_twisted.ensureDeferred
async def test_without_the_token_every_admin_route_is_401_and_nothing_changes(served) -> None:
    server, state = served
    await trip(state)
    await task(state.cache.put(SEARCH, ApiAnswer("ok", 200, {"n": 1}), 60))  # type: ignore[union-attr]
    for token in (None, "wrong", TOKEN[:-1], TOKEN + "x", ""):
        for method, path in ADMIN_ROUTES:
            answer = await server.call(method, path, token=token)
            assert answer.status == 401, (token, method, path)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    basic = await server.call(
        "GET",
        "/admin/rate-limits",
        token=None,
        headers={b"Authorization": [f"Basic {TOKEN}".encode()]},
    )
    assert basic.status == 401
    assert await breaker_state(state) == "open"
    assert await task(state.cache.get(SEARCH)) is not None  # type: ignore[union-attr]
    for answer in server.answers:
        assert TOKEN not in answer.text()


@pytest_twisted.ensureDeferred
async def test_with_no_token_configured_admin_is_off_with_how_to_turn_it_on(redis_url) -> None:
    server, state = await make_server(redis_url)
    try:
        await trip(state)
        for token in (None, TOKEN):
            for method, path in ADMIN_ROUTES:
                answer = await server.call(method, path, token=token)
                assert answer.status == 403, (method, path)
                assert "set APIGW_ADMIN_TOKEN" in answer.json["error"]
        assert await breaker_state(state) == "open"
        assert (await server.call("GET", "/health", token=None)).status == 200
    finally:
        await server.close()
        await task(state.close())


@pytest_twisted.ensureDeferred
async def test_breakers_list_reset_one_and_reset_all(served) -> None:
    server, state = served
    await trip(state)
    listed = await server.call("GET", "/admin/circuit-breakers")
    assert listed.status == 200 and listed.json[MB]["state"] == "open"
    assert sorted(listed.json) == sorted(state.providers)
    reset = await server.call("POST", f"/admin/circuit-breakers/{MB}/reset")
    assert reset.status == 200
    assert (reset.json["state"], reset.json["failures"], reset.json["resets"]) == ("closed", 0, 1)
    assert await breaker_state(state) == "closed"
    await trip(state)
    every = await server.call("POST", "/admin/circuit-breakers/reset-all")
    assert every.status == 200
    assert {view["state"] for view in every.json.values()} == {"closed"}
    assert every.json[MB]["resets"] == 2
    assert await breaker_state(state) == "closed"


@pytest_twisted.ensureDeferred
async def test_rate_limits_list_and_reset_end_the_fleets_pause(served) -> None:
    server, state = served
    assert state.store is not None
    limits = rate_limits(state.providers[MB])
    await task(state.store.pause(MB, 300.0, limits))
    listed = await server.call("GET", "/admin/rate-limits")
    assert listed.status == 200
    mb = listed.json[MB]
    assert mb["configured"]["rate"] == state.providers[MB].rate
    assert 299 < mb["paused_for"] <= 300 and mb["tokens"] < 1 and mb["source"] == "fleet"
    reset = await server.call("POST", f"/admin/rate-limits/{MB}/reset")
    assert reset.status == 200
    assert reset.json["paused_for"] == 0 and reset.json["tokens"] == state.providers[MB].burst
    granted = await task(state.store.acquire(MB, limits))
    assert granted.granted and granted.paused_for == 0


@pytest_twisted.ensureDeferred
async def test_unknown_provider_404_unknown_route_404_bad_method_405(served) -> None:
    server, _ = served
    for method, path in [
        ("POST", "/admin/rate-limits/nosuch/reset"),
        ("POST", "/admin/circuit-breakers/nosuch/reset"),
        ("POST", "/admin/cache/invalidate?provider=nosuch"),
        ("POST", f"/admin/cache/invalidate?provider={MB}&data_type=nosuch"),
    ]:
        answer = await server.call(method, path)
        assert answer.status == 404, path
        assert "nosuch" in answer.json["error"]
    assert (await server.call("GET", "/admin/nothing")).status == 404
    assert (await server.call("GET", "/admin")).status == 404
    for method, path in ADMIN_ROUTES:
        other = "POST" if method == "GET" else "GET"
        answer = await server.call(other, path)
        assert (answer.status, answer.headers["allow"]) == (405, method), path
    assert (await server.call("POST", "/admin/cache/invalidate")).status == 400


@pytest_twisted.ensureDeferred
async def test_cache_stats_count_entries_hits_misses_and_invalidate_makes_lookups_miss(
    served, redis_url
) -> None:
    server, state = served
    job = ResponseCache(RedisCacheBackend(redis_url), namespace="apigw")
    other = ApiCall(MB, "search", "/recording", params=(("query", "y"),))
    try:
        await task(job.put(SEARCH, ApiAnswer("ok", 200, {"n": 1}), 600))
        await task(job.put(other, ApiAnswer("ok", 200, {"n": 2}), 600))
        assert await task(job.get(SEARCH)) is not None
        assert await task(job.get(ApiCall(MB, "isrc", "/isrc/X"))) is None
    finally:
        await task(job.close())  # adds its counts to Redis
    stats = await server.call("GET", "/admin/cache/stats")
    assert stats.status == 200 and stats.json["backend"] == "redis"
    rows = stats.json["providers"][MB]
    assert rows["search"] == {
        "entries": 2,
        "old_entries": 0,
        "generation": 0,
        "hits": 1,
        "misses": 0,
    }
    assert rows["isrc"]["misses"] == 1 and rows["isrc"]["entries"] == 0
    answer = await server.call("POST", f"/admin/cache/invalidate?provider={MB}&data_type=search")
    assert answer.status == 200
    assert answer.json == {"provider": MB, "invalidated": {"search": 1}}
    assert state.cache is not None
    assert await task(state.cache.get(SEARCH)) is None  # a later lookup misses
    after = (await server.call("GET", "/admin/cache/stats")).json["providers"][MB]["search"]
    assert (after["entries"], after["old_entries"], after["generation"]) == (0, 2, 1)
    every = await server.call("POST", f"/admin/cache/invalidate?provider={MB}")
    assert every.json["invalidated"] == {
        name: 2 if name == "search" else 1 for name in state.providers[MB].cache_ttl
    }


@pytest_twisted.ensureDeferred
async def test_redis_failing_is_503_naming_it_without_its_password(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    closed = "redis://:hunter2-pw@127.0.0.1:9/0"  # port 9 (discard): nothing listens
    server, state = await make_server(closed, APIGW_ADMIN_TOKEN=TOKEN, APIGW_CACHE_TIMEOUT=0.5)
    try:
        health = await server.call("GET", "/health", token=None)
        assert health.status == 503 and health.json["status"] == "unhealthy"
        assert health.json["redis"]["status"] == "unavailable"
        for method, path in ADMIN_ROUTES:
            answer = await server.call(method, path)
            assert answer.status == 503, path
            assert "127.0.0.1:9" in answer.json["error"]
    finally:
        await server.close()
        await task(state.close())
    for answer in server.answers:
        assert "hunter2" not in answer.text() and TOKEN not in answer.text()
    assert "hunter2" not in caplog.text and TOKEN not in caplog.text
