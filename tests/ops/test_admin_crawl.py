"""The admin endpoints of one crawl without shared limits (:class:`CrawlState` on the
gateway's own breakers and buckets, the embedded cache), over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
from admin_helpers import TOKEN, Server, gateway_settings, task
from scrapy.utils.test import get_crawler

from scrapy_apigw.cache import EmbeddedCacheBackend, ResponseCache
from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.ops.admin import ops_children
from scrapy_apigw.ops.state import CrawlState
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

MB = "discogs"
SEARCH = ApiCall(MB, "search", "/database/search", params=(("q", "x"),))


@pytest_twisted.async_yield_fixture
async def crawl(tmp_path: Path) -> AsyncIterator[tuple[Server, Gateway]]:
    settings = gateway_settings(
        {"APIGW_ADMIN_TOKEN": TOKEN, "APIGW_PROVIDERS": {MB: {"failure_threshold": 1}}}
    )
    gateway = Gateway(get_crawler(), settings)
    gateway.cache = ResponseCache(EmbeddedCacheBackend(tmp_path / "cache.sqlite3"))
    await task(gateway.cache.open())
    server = Server(ops_children(CrawlState(gateway)))
    yield server, gateway
    await server.close()
    await task(gateway.cache.close())


@pytest_twisted.ensureDeferred
async def test_local_breaker_and_pause_are_listed_and_reset(crawl: Any) -> None:
    server, gateway = crawl
    state = gateway.states[MB]
    health = (await server.call("GET", "/health", token=None)).json
    assert (health["status"], health["redis"]["status"]) == ("healthy", "not configured")
    state.breaker.record_failure()
    gateway.pause(state, 120.0, "test")
    mb = (await server.call("GET", "/admin/circuit-breakers")).json[MB]
    assert (mb["source"], mb["state"], mb["failures"], mb["opened"]) == ("local", "open", 1, 1)
    assert mb["last_failure_time"] is not None
    limits = (await server.call("GET", "/admin/rate-limits")).json[MB]
    assert limits["source"] == "local" and 119 < limits["paused_for"] <= 120
    assert (await server.call("GET", "/health", token=None)).json["status"] == "degraded"
    reset = await server.call("POST", f"/admin/circuit-breakers/{MB}/reset")
    assert reset.status == 200 and reset.json["state"] == "closed"
    assert state.breaker.state is BreakerState.CLOSED
    reset = await server.call("POST", f"/admin/rate-limits/{MB}/reset")
    assert reset.status == 200 and reset.json["paused_for"] == 0
    assert state.bucket.blocked_until <= gateway.clock()


@pytest_twisted.ensureDeferred
async def test_embedded_cache_stats_and_invalidation(crawl: Any) -> None:
    server, gateway = crawl
    await task(gateway.cache.put(SEARCH, ApiAnswer("ok", 200, {"r": 1}), 600))
    assert await task(gateway.cache.get(SEARCH)) is not None
    stats = await server.call("GET", "/admin/cache/stats")
    assert stats.status == 200 and stats.json["backend"] == "embedded"
    assert stats.json["providers"][MB]["search"] == {
        "entries": 1,
        "old_entries": 0,
        "generation": 0,
        "hits": 1,
        "misses": 0,
    }
    done = await server.call("POST", f"/admin/cache/invalidate?provider={MB}&data_type=search")
    assert done.json == {"provider": MB, "invalidated": {"search": 1}}
    assert await task(gateway.cache.get(SEARCH)) is None
    row = (await server.call("GET", "/admin/cache/stats")).json["providers"][MB]["search"]
    assert (row["entries"], row["old_entries"], row["misses"]) == (0, 1, 1)
