"""The response cache of the enrichment pipeline: one interface, two backends.

- :class:`ResponseCache` stores :class:`~scrapy_apigw.providers.base.ApiAnswer` objects by
  :class:`~scrapy_apigw.providers.base.ApiCall` and turns every backend failure into a miss;
- :class:`RedisCacheBackend` shares the cache between processes and machines (txredisapi), over
  a :class:`RedisClient` whose every operation is bounded and whose failures
  (:class:`RedisFailure`) say why;
- :class:`EmbeddedCacheBackend` needs no server: an SQLite file under the project's ``.scrapy``
  directory, kept between runs.

Import-safe: nothing here imports txredisapi or ``twisted.internet.reactor`` at module level.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from scrapy_apigw.cache.base import (
    CACHEABLE_KINDS,
    CacheBackend,
    CacheError,
    CorruptEntry,
    cache_key,
    decode_answer,
    encode_answer,
)
from scrapy_apigw.cache.embedded import EmbeddedCacheBackend, default_embedded_path
from scrapy_apigw.cache.redis import RedisAddress, RedisCacheBackend, parse_redis_url
from scrapy_apigw.cache.redis_client import RedisClient, RedisFailure, RedisProblem
from scrapy_apigw.cache.resilient import DEFAULT_STALE_TTL, EVENTS, ResponseCache
from scrapy_apigw.core.clock import Clock

__all__ = [
    "CACHEABLE_KINDS",
    "DEFAULT_STALE_TTL",
    "EVENTS",
    "CacheBackend",
    "CacheError",
    "CorruptEntry",
    "EmbeddedCacheBackend",
    "RedisAddress",
    "RedisCacheBackend",
    "RedisClient",
    "RedisFailure",
    "RedisProblem",
    "ResponseCache",
    "build_backend",
    "cache_key",
    "decode_answer",
    "default_embedded_path",
    "encode_answer",
    "open_cache",
    "parse_redis_url",
]


def build_backend(
    redis_url: str | None = None,
    embedded_path: str | os.PathLike[str] | None = None,
    *,
    redis_timeout: float = 1.0,
    redis_poolsize: int = 4,
    redis_tls_ca_file: str | os.PathLike[str] | None = None,
) -> CacheBackend:
    """Return a Redis backend when *redis_url* is set, else the embedded one (not opened).

    Call it at crawler start, so a bad setting fails the crawl at once.

    Args:
        redis_url: ``redis://`` or ``rediss://`` URL, or ``None``/empty for the embedded cache.
        embedded_path: SQLite file; ``None`` for :func:`default_embedded_path`.
        redis_timeout: seconds per Redis command (see :class:`RedisCacheBackend`).
        redis_poolsize: Redis connections.
        redis_tls_ca_file: PEM CA certificate(s) to trust for ``rediss://``; ``None`` for the
            system's.

    Raises:
        ConfigError: an invalid Redis URL, timeout, pool size or CA file.
    """
    if redis_url:
        return RedisCacheBackend(
            redis_url,
            timeout=redis_timeout,
            poolsize=redis_poolsize,
            tls_ca_file=redis_tls_ca_file,
        )
    return EmbeddedCacheBackend(embedded_path or default_embedded_path())


async def open_cache(
    redis_url: str | None = None,
    embedded_path: str | os.PathLike[str] | None = None,
    *,
    redis_timeout: float = 1.0,
    redis_poolsize: int = 4,
    redis_tls_ca_file: str | os.PathLike[str] | None = None,
    namespace: str = "apigw",
    on_event: Callable[[str, str], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
    failure_threshold: int = 3,
    retry_after: float = 5.0,
    clock: Clock = time.monotonic,
    stale_ttl: float = DEFAULT_STALE_TTL,
) -> ResponseCache:
    """Build the backend (see :func:`build_backend`), wrap it in a :class:`ResponseCache` and
    open it.

    An unreachable backend does not raise: the cache starts degraded (misses, one warning) and
    recovers by itself. Close it with ``await cache.close()``.

    Raises:
        ConfigError: an invalid Redis URL, timeout, pool size or CA file.
    """
    backend = build_backend(
        redis_url,
        embedded_path,
        redis_timeout=redis_timeout,
        redis_poolsize=redis_poolsize,
        redis_tls_ca_file=redis_tls_ca_file,
    )
    cache = ResponseCache(
        backend,
        namespace=namespace,
        on_event=on_event,
        on_error=on_error,
        failure_threshold=failure_threshold,
        retry_after=retry_after,
        clock=clock,
        stale_ttl=stale_ttl,
    )
    await cache.open()
    return cache
