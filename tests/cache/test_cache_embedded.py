"""The embedded (SQLite) backend: persistence, expiry, concurrency, its thread, bad files.

See test_cache_redis.py for why cache coroutines are wrapped with ``task()``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from scrapy_apigw.cache import (
    EmbeddedCacheBackend,
    ResponseCache,
    cache_key,
    default_embedded_path,
    open_cache,
)
from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TRACK = ApiCall("beatport", "track", "/catalog/tracks/17345678/")
OK = ApiAnswer("ok", 200, {"id": 17345678, "bpm": 124, "key": {"camelot_number": 8}})
EPOCH = 1_760_000_000.0


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task, as Scrapy runs pipelines; fail after 10 s instead of
    hanging (pytest-timeout cannot interrupt the running reactor)."""
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


def rows(path: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, expires_at FROM apigw_cache ORDER BY key").fetchall()


def worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "apigw-cache-sqlite" in t.name]


@pytest_twisted.ensureDeferred
async def test_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite3"  # the directory is created
    first = await task(open_cache(embedded_path=path))
    await task(first.put(TRACK, OK, 3600))
    await task(first.close())

    second = await task(open_cache(embedded_path=path))  # a new instance, as in a new run
    try:
        assert await task(second.get(TRACK)) == ApiAnswer("ok", 200, OK.data, from_cache=True)
    finally:
        await task(second.close())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest_twisted.ensureDeferred
async def test_expiry_by_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    clock = WallClock()
    backend = EmbeddedCacheBackend(path, clock=clock)
    # stale_ttl=0: the row lives for its TTL exactly (no stale-if-error margin).
    cache = ResponseCache(backend, stale_ttl=0, wall_clock=clock)
    await task(cache.open())
    try:
        await task(cache.put(TRACK, OK, 10.0))
        await task(cache.put(ApiCall("beatport", "search", "/search"), OK, 100.0))
        assert rows(path)[1] == (cache_key(TRACK), EPOCH + 10.0)
        clock.now = EPOCH + 9.999
        assert await task(cache.get(TRACK)) is not None
        clock.now = EPOCH + 10.0
        assert await task(cache.get(TRACK)) is None
    finally:
        await task(cache.close())
    assert len(rows(path)) == 2  # an expired row is left alone by get...

    reopened = EmbeddedCacheBackend(path, clock=clock)
    await task(reopened.open())  # ...and purged at open
    await task(reopened.close())
    assert [key for key, _ in rows(path)] == [cache_key(ApiCall("beatport", "search", "/search"))]


@pytest_twisted.ensureDeferred
async def test_concurrent_gets_and_puts(tmp_path: Path) -> None:
    events: Counter[str] = Counter()
    cache = await task(
        open_cache(embedded_path=tmp_path / "c.sqlite3", on_event=lambda e, p: events.update([e]))
    )
    calls = [ApiCall("discogs", "release", f"/releases/{i}") for i in range(300)]

    async def one(i: int) -> ApiAnswer | None:
        miss = await cache.get(calls[i])
        await cache.put(calls[i], ApiAnswer("ok", 200, {"id": i}), 60)
        hit = await cache.get(calls[i])
        return hit if miss is None else None

    try:
        answers = await task(asyncio.gather(*(one(i) for i in range(300))))
    finally:
        await task(cache.close())
    assert [a.data["id"] if a else None for a in answers] == list(range(300))
    assert events == {"miss": 300, "store": 300, "hit": 300}
    assert len(rows(tmp_path / "c.sqlite3")) == 300


@pytest_twisted.ensureDeferred
async def test_runs_on_its_own_thread_and_stops_it(tmp_path: Path) -> None:
    before = worker_threads()
    backend = EmbeddedCacheBackend(tmp_path / "c.sqlite3")
    await task(backend.open())
    await task(backend.set("k", b"v", 5))
    assert len(worker_threads()) == len(before) + 1
    await task(backend.close())
    await task(backend.close())  # twice is fine
    assert worker_threads() == before


@pytest_twisted.ensureDeferred
async def test_backend_round_trip_bytes(tmp_path: Path) -> None:
    backend = EmbeddedCacheBackend(tmp_path / "c.sqlite3")
    await task(backend.open())
    try:
        for value in (b"\x00\xff binary", b"123", "Été".encode()):
            await task(backend.set("k", value, 10))
            assert await task(backend.get("k")) == value
        await task(backend.delete("k"))
        assert await task(backend.get("k")) is None
    finally:
        await task(backend.close())


@pytest_twisted.ensureDeferred
async def test_unusable_file_degrades_to_no_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not an sqlite database, " * 100)
    events: Counter[str] = Counter()
    before = worker_threads()
    cache = await task(open_cache(embedded_path=path, on_event=lambda e, p: events.update([e])))
    try:
        assert await task(cache.get(TRACK)) is None
        await task(cache.put(TRACK, OK, 60))
    finally:
        await task(cache.close())
    assert events == {"skipped": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"sqlite:{path}" in warnings[0]
    assert "continuing without it" in warnings[0]
    assert worker_threads() == before  # a failed open leaves no thread behind


def test_default_path_is_under_the_project_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRAPY_SETTINGS_MODULE", raising=False)
    (tmp_path / "scrapy.cfg").write_text("[settings]\ndefault = myproject.settings\n")
    (tmp_path / "myproject" / "spiders").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "myproject" / "spiders")
    path = Path(default_embedded_path())
    assert path == tmp_path / ".scrapy" / "apigw" / "cache.sqlite3"
    assert path.parent.is_dir()


def test_default_path_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRAPY_SETTINGS_MODULE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_embedded_path() == str(Path(".scrapy", "apigw", "cache.sqlite3"))
    assert (tmp_path / ".scrapy" / "apigw").is_dir()


@pytest.fixture
def scrapyd_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The situation of a Scrapyd job: ``SCRAPY_SETTINGS_MODULE`` names an importable module
    (the deployed egg's), ``SCRAPY_PROJECT`` is set, the working directory has no scrapy.cfg."""
    (tmp_path / "eggs" / "jobproject").mkdir(parents=True)
    (tmp_path / "eggs" / "jobproject" / "__init__.py").write_text("")
    (tmp_path / "eggs" / "jobproject" / "settings.py").write_text("BOT_NAME = 'jobproject'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "eggs"))
    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "jobproject.settings")
    monkeypatch.setenv("SCRAPY_PROJECT", "tracklists")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    (tmp_path / "scrapyd").mkdir()
    monkeypatch.chdir(tmp_path / "scrapyd")
    return tmp_path


def test_default_path_in_a_scrapyd_job_is_the_projects_user_cache_file(
    scrapyd_job: Path,
) -> None:
    # Scrapy's data_path() raises NotConfigured here ("Unable to find scrapy.cfg").
    assert default_embedded_path() == str(
        scrapyd_job / "xdg-cache" / "scrapy-apigw" / "tracklists" / "cache.sqlite3"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "home/.cache/scrapy-apigw/default/cache.sqlite3"),
        ({"XDG_CACHE_HOME": "relative/dir"}, "home/.cache/scrapy-apigw/default/cache.sqlite3"),
        ({"SCRAPY_PROJECT": "../../etc x"}, "home/.cache/scrapy-apigw/_.._etc_x/cache.sqlite3"),
        ({"SCRAPY_PROJECT": ".."}, "home/.cache/scrapy-apigw/default/cache.sqlite3"),
    ],
)
def test_default_path_outside_scrapys_data_dir_falls_back_to_home_cache(
    scrapyd_job: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("HOME", str(scrapyd_job / "home"))
    assert default_embedded_path(environ) == str(scrapyd_job / expected)


@pytest_twisted.ensureDeferred
async def test_the_default_cache_opens_and_works_in_a_scrapyd_job(scrapyd_job: Path) -> None:
    events: Counter[str] = Counter()
    cache = await task(open_cache(on_event=lambda e, p: events.update([e])))
    try:
        await task(cache.put(TRACK, OK, 60))
        assert await task(cache.get(TRACK)) is not None
    finally:
        await task(cache.close())
    path = scrapyd_job / "xdg-cache" / "scrapy-apigw" / "tracklists" / "cache.sqlite3"
    assert cache.describe() == f"sqlite:{path}"
    assert events == {"store": 1, "hit": 1}
    assert len(rows(path)) == 1


@pytest_twisted.ensureDeferred
async def test_failed_open_is_retried_after_the_skip_window(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the cache directory should be")
    clock, events = FakeClock(), Counter[str]()
    cache = ResponseCache(
        EmbeddedCacheBackend(blocker / "cache.sqlite3"),
        retry_after=5.0,
        clock=clock,
        on_event=lambda e, p: events.update([e]),
    )
    await task(cache.open())
    assert not cache.available
    blocker.unlink()  # the obstacle goes away
    await task(cache.put(TRACK, OK, 60))
    assert events == {"skipped": 1}
    clock.advance(5.0)
    await task(cache.put(TRACK, OK, 60))  # the probe opens the backend, then stores
    assert await task(cache.get(TRACK)) is not None
    await task(cache.close())
    assert events == {"skipped": 1, "store": 1, "hit": 1}


@pytest_twisted.ensureDeferred
async def test_open_is_optional_and_close_is_final(tmp_path: Path) -> None:
    before = worker_threads()
    events: Counter[str] = Counter()
    cache = ResponseCache(
        EmbeddedCacheBackend(tmp_path / "c.sqlite3"), on_event=lambda e, p: events.update([e])
    )
    await task(cache.put(TRACK, OK, 60))  # opens the backend
    await task(cache.close())
    assert not cache.available
    assert await task(cache.get(TRACK)) is None  # skipped: the backend stays closed
    assert worker_threads() == before
    assert events == {"store": 1, "skipped": 1}
