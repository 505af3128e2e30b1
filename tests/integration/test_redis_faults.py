"""A crawl whose Redis cache is unusable finishes, with every item and its stats.

The issue's case: ``rediss://`` to a plain Redis hung the crawl at close (killed: items missing,
no stats). Also a server that accepts and never answers, one that answers garbage (not Redis),
and a Redis frozen with SIGSTOP. Each crawl is bounded: a hang fails the test, it does not hang
the suite. The per-operation bounds are proven in tests/cache/test_cache_redis_bounds.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from conftest import CrawlResult, gateway_settings, run_crawl
from fixtures_bad_redis import BadServer, redis_leftovers
from spiders import ItemsSpider
from twisted.internet.defer import Deferred

TRACKS = [
    {"artist": "Daft Punk", "title": "One More Time"},
    {"artist": "Daft Punk", "title": "Around the World"},
    {"artist": "Daft Punk", "title": "Da Funk"},
]
CACHE_TIMEOUT = 0.5
#: Catches a hang (the crawl of three items takes about 5 s here, whatever the Redis): a bad
#: cache costs at most one timeout per connecting step and PING at open, one at close, and
#: nothing per item once it is skipped. Those bounds are proven in test_cache_redis_bounds.py.
CRAWL_BOUND = 60.0


@pytest.fixture
def bad_redis(request: pytest.FixtureRequest, redis_server: Any, redis_url: str) -> Iterator[str]:
    """The URL of an unusable Redis, by kind (the test's parameter)."""
    kind = request.param
    if kind == "rediss-to-plain-redis":
        yield f"rediss://:hunter2@127.0.0.1:{redis_server.port}/0"
    elif kind == "rediss-to-silent-server":  # as a plain Redis that never answers "-ERR"
        server = BadServer()
        try:
            yield f"rediss://:hunter2@127.0.0.1:{server.port}/0"
        finally:
            server.stop()
    elif kind == "frozen-redis":
        redis_server.pause()  # the redis_url fixture resumes it
        yield f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    else:
        server = BadServer(reply=b"HTTP/1.1 400 Bad Request\r\n\r\n" if kind == "garbage" else None)
        try:
            yield f"redis://:hunter2@127.0.0.1:{server.port}/0"
        finally:
            server.stop()


async def bounded_crawl(settings: dict[str, Any]) -> CrawlResult:
    from twisted.internet import reactor

    d = Deferred.fromCoroutine(run_crawl(ItemsSpider, settings, items=TRACKS))
    d.addTimeout(CRAWL_BOUND, reactor)
    return await d


@pytest.mark.parametrize(
    "bad_redis",
    [
        "rediss-to-plain-redis",
        "rediss-to-silent-server",
        "silent-server",
        "garbage",
        "frozen-redis",
    ],
    indirect=True,
)
@pytest_twisted.ensureDeferred
async def test_crawl_with_an_unusable_redis_keeps_every_item_and_writes_its_stats(
    bad_redis: str, sandbox: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = gateway_settings(
        sandbox, tmp_path, APIGW_REDIS_URL=bad_redis, APIGW_CACHE_TIMEOUT=CACHE_TIMEOUT
    )
    result = await bounded_crawl(settings)
    print(f"crawl: {result.seconds:.2f} s")
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == len(TRACKS)
    assert sorted(i["title"] for i in result.items) == sorted(t["title"] for t in TRACKS)
    assert all(i["enrichment_status"] == "completed" for i in result.items), result.statuses()
    assert sum(v for k, v in stats.items() if k.startswith("apigw/items/")) == len(TRACKS)
    degraded = sum(v for k, v in stats.items() if k.endswith(("/cache/error", "/cache/skipped")))
    assert degraded >= len(TRACKS)  # at least one lookup per item, none answered by Redis
    assert not any(k.endswith(("/cache/hit", "/cache/store")) for k in stats)
    port = int(bad_redis.rsplit(":", 1)[1].split("/")[0])
    assert redis_leftovers(port) == []  # closed: no connection, no reconnection timer
    cache_warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("scrapy_apigw.cache")
    ]
    assert len(cache_warnings) == 1, cache_warnings
    assert (
        f"redis{'s' if 'rediss' in bad_redis else ''}://:***@127.0.0.1:{port}/0"
        in (cache_warnings[0])
    )
    if bad_redis.startswith("rediss://"):
        assert (
            f"rediss:// handshake with 127.0.0.1:{port} failed: is the server speaking TLS?"
            in cache_warnings[0]
        )
    assert "hunter2" not in caplog.text
