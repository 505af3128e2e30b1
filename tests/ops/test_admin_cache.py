"""Cache invalidation by generation, on both backends: two caches on one store stand for two
processes. A later lookup misses (at once where invalidated, within the backend's
``generation_max_age`` elsewhere), the old entries are left untouched (never read again, they
expire in their time), and the stats count entries, hits and misses per data type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from admin_helpers import task
from twisted.internet.defer import gatherResults as gather

from scrapy_apigw.cache import EmbeddedCacheBackend, RedisCacheBackend, ResponseCache
from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

SEARCH = ApiCall("spotify", "search", "/search", params=(("q", "a"),))
TRACK = ApiCall("spotify", "track", "/tracks/1")
OK = ApiAnswer("ok", 200, {"id": 1})


@pytest.fixture(params=["embedded", "redis"])
def backend(request: Any, tmp_path: Path) -> Callable[[], Any]:
    """A factory of backends on ONE store (each call: another process's connection)."""
    if request.param == "embedded":
        return lambda: EmbeddedCacheBackend(tmp_path / "cache.sqlite3")
    url = request.getfixturevalue("redis_url")
    return lambda: RedisCacheBackend(url)


def raw_entries(cache: ResponseCache) -> Any:
    return task(cache.backend.scan("apigw:v1:spotify:"))  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_a_later_lookup_misses_and_the_old_entries_are_left_to_expire(backend) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    a = ResponseCache(backend(), clock=clock_a)
    b = ResponseCache(backend(), clock=clock_b)
    try:
        await task(a.put(SEARCH, OK, 600))
        await task(a.put(TRACK, OK, 600))
        assert await task(b.get(SEARCH)) is not None
        before = sorted(await raw_entries(a))
        assert len(before) == 2
        assert await task(a.invalidate("spotify", "search")) == 1
        assert await task(a.get(SEARCH)) is None  # the invalidating process: at once
        assert await task(a.get_stale(SEARCH)) is None  # not even as a stale stand-in
        max_age = b.backend.generation_max_age  # type: ignore[attr-defined]
        if max_age > 0:
            # The other process uses the generation it read for at most max_age seconds.
            assert await task(b.get(SEARCH)) is not None
            clock_b.advance(max_age)
        assert await task(b.get(SEARCH)) is None  # the other process: within the bound
        assert await task(b.get(TRACK)) is not None  # another data type is untouched
        # Nothing was deleted or rewritten: the old entry is simply never read again.
        assert sorted(await raw_entries(a)) == before
        await task(b.put(SEARCH, ApiAnswer("ok", 200, {"id": 2}), 600))
        assert (await task(a.get(SEARCH))).data == {"id": 2}
        stats = await task(a.stats())
        # Counts: a's own lookups (b's are added to the store when it closes).
        assert stats[("spotify", "search")] == {
            "entries": 1,
            "old_entries": 1,
            "generation": 1,
            "hits": 1,
            "misses": 1,
        }
        assert stats[("spotify", "track")]["entries"] == 1
    finally:
        await task(a.close())
        await task(b.close())
    # After both closed, their counts are in the store: a's and b's hits and misses.
    c = ResponseCache(backend())
    try:
        stats = await task(c.stats())
        search = stats[("spotify", "search")]
        # a: 1 hit, 1 miss; b: 1 hit (2 with the lookup inside the bound), 1 miss.
        assert (search["hits"], search["misses"]) == (3 if max_age > 0 else 2, 2)
        assert stats[("spotify", "track")]["hits"] == 1
    finally:
        await task(c.close())


@pytest_twisted.ensureDeferred
async def test_lookups_finding_the_generation_due_at_once_share_one_read(backend) -> None:
    # A warm crawl's items all find the generation due in the same turn: one read for them all,
    # not one per lookup (100 items in flight made ~100 reads a second per data type).
    store = backend()
    read = store.counter
    reads: list[str] = []

    async def counting(name: str, field: str) -> int:
        reads.append(field)
        return await read(name, field)

    store.counter = counting
    clock = FakeClock()
    cache = ResponseCache(store, clock=clock)
    try:
        await task(cache.put(SEARCH, OK, 600))
        clock.advance(store.generation_max_age)  # the generation read by put() is now due
        reads.clear()
        answers = await gather([task(cache.get(SEARCH)) for _ in range(10)])
        assert [a.data for a in answers] == [{"id": 1}] * 10
        assert reads == ["spotify:search"]
        assert await task(cache.get(SEARCH)) is not None  # read within max_age: no new read
        assert reads == ["spotify:search"]
        # Half the age on, the known generation is used and read again in the background,
        # once for all the lookups.
        clock.advance(store.generation_max_age / 2)
        answers = await gather([task(cache.get(SEARCH)) for _ in range(10)])
        assert [a.data for a in answers] == [{"id": 1}] * 10
        # The read started with the first of them runs at the loop's next turn (a lookup's).
        assert await task(cache.get(SEARCH)) is not None
        assert reads == ["spotify:search"] * 2
    finally:
        await task(cache.close())
