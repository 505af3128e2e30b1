"""Helpers of the fleet tests (imported by module name: pytest puts this directory on sys.path).

Store coroutines call ``maybe_deferred_to_future``, which under the asyncio reactor returns an
asyncio Future: they must run as asyncio Tasks (see tests/cache/test_cache_redis.py), hence
``task()``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred, DeferredList

US = 1e-6  # one microsecond, in seconds: the scripts' resolution


def task(awaitable: Awaitable[Any], timeout: float = 10.0) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task; fail after *timeout* s instead of hanging
    (pytest-timeout cannot interrupt the running reactor)."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(timeout, reactor)
    return d


async def gather(*awaitables: Awaitable[Any]) -> list[Any]:
    """Run *awaitables* concurrently as tasks; return their results in order (raise the first
    failure)."""
    results = await DeferredList([task(a) for a in awaitables], fireOnOneErrback=True)
    return [value for _, value in results]


def pool(url: str, poolsize: int = 8) -> Any:
    """A txredisapi pool with txredisapi's defaults (``charset="utf-8"``,
    ``convertNumbers=True``), unlike :meth:`FleetStore.connect`'s: the store must decode both."""
    import txredisapi

    from scrapy_apigw.cache.redis import parse_redis_url

    address = parse_redis_url(url)
    return txredisapi.lazyConnectionPool(
        host=address.host, port=address.port, poolsize=poolsize, replyTimeout=5
    )
