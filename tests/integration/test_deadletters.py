"""Dead letters end to end (issue 9 section 2): written for failed and partial items on both
backends, replayed by ``apigw_enrich -a dead_letters=1`` (success removes, failure counts an
attempt), kept in the file when Redis is down. Real crawls against the sandbox, real Redis."""

from __future__ import annotations

import json
import logging
import time

import pytest
import pytest_twisted
from conftest import gateway_settings, run_crawl
from scrapy.utils.defer import deferred_from_coro
from spiders import ItemsSpider

from scrapy_apigw.deadletters.record import track_key
from scrapy_apigw.deadletters.store_file import FileDeadLetterStore
from scrapy_apigw.deadletters.store_redis import RedisDeadLetterStore
from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS
from scrapy_apigw.spiders.enrich import EnrichSpider

WATERFALL = ["spotify", "musicbrainz"]


def two_tracks(sandbox):
    """A track by artist and title (Spotify down: MusicBrainz still finds it, ``partial``) and
    one by Spotify ID only (Spotify down: nothing else can look it up, ``failed``)."""
    tracks = [t for t in sandbox.catalog()["tracks"] if t["musicbrainz_isrc_listed"]]
    by_text = {"artist": tracks[0]["artists"][0], "title": tracks[0]["title"], "position": 1}
    by_id = {"spotify_id": tracks[1]["spotify_id"], "position": 2}
    return by_text, by_id


def settings_for(sandbox, tmp_path, backend, redis_url=None, **extra):
    extra.setdefault("APIGW_WATERFALL", WATERFALL)
    extra.setdefault("APIGW_DEADLETTER_PATH", str(tmp_path / "deadletters.sqlite3"))
    if backend == "redis":
        extra.setdefault("APIGW_REDIS_URL", redis_url)
        extra.setdefault("APIGW_SHARED_LIMITS", False)
    return gateway_settings(sandbox, tmp_path, **extra)


async def stored(backend, tmp_path, redis_url=None):
    """Every record of the store, by key (read in an asyncio Task, as Scrapy runs pipelines:
    the stores await asyncio Futures)."""
    from twisted.internet import reactor

    d = deferred_from_coro(_stored(backend, tmp_path, redis_url))
    d.addTimeout(10, reactor)
    return await d


async def _stored(backend, tmp_path, redis_url):
    if backend == "redis":
        store = RedisDeadLetterStore(redis_url)
    else:
        store = FileDeadLetterStore(tmp_path / "deadletters.sqlite3")
    await store.open()
    try:
        records = {r.key: r async for r in store.scan()}
        # The keys the queue reads at open, to skip the removal of tracks it holds no record of.
        assert sorted(await store.track_keys()) == sorted(records)
        return records
    finally:
        await store.close()


def key(inputs):
    return track_key(inputs, DEFAULT_INPUT_FIELDS)


@pytest.fixture(params=["file", "redis"])
def backend(request):
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_url")
    return "file", None


@pytest_twisted.ensureDeferred
async def test_failed_and_partial_items_leave_dead_letters_then_replay_follows_the_schedule(
    sandbox, tmp_path, backend
):
    kind, redis_url = backend
    by_text, by_id = two_tracks(sandbox)
    sandbox.set_faults("spotify", outage=True)
    settings = settings_for(sandbox, tmp_path, kind, redis_url)
    before = time.time()
    first = await run_crawl(ItemsSpider, settings, items=[dict(by_text), dict(by_id)])
    after = time.time()
    assert sorted(i["enrichment_status"] for i in first.items) == ["failed", "partial"]
    assert first.stats["apigw/deadletters/written"] == 2
    assert first.stats["apigw/deadletters/written/failed"] == 1
    assert first.stats["apigw/deadletters/written/partial"] == 1

    records = await stored(kind, tmp_path, redis_url)
    assert set(records) == {key(by_text), key(by_id)}
    partial, failed = records[key(by_text)], records[key(by_id)]
    assert (partial.status, failed.status) == ("partial", "failed")
    assert partial.inputs == by_text and failed.inputs == by_id  # as scraped
    assert set(partial.errors) == {"spotify"} and set(failed.errors) == {"spotify"}
    assert partial.errors["spotify"]  # why (log-safe reason)
    assert (partial.attempts, failed.attempts) == (1, 1)
    for record in (partial, failed):
        assert before <= record.last_attempt == record.first_attempt <= after
    if kind == "redis":
        assert not (tmp_path / "deadletters.sqlite3").exists(), "Redis up: no fallback file"

    # Replay, Spotify still down: the failed record (1 attempt < 3) is due and fails again;
    # the partial one (tried seconds ago, not 24 h) is not due.
    second = await run_crawl(EnrichSpider, settings, dead_letters="1")
    assert [i.get("spotify_id") for i in second.items] == [by_id["spotify_id"]]
    assert second.items[0]["enrichment_status"] == "failed"
    assert second.stats["apigw/deadletters/replayed"] == 1
    assert second.stats["apigw/deadletters/not_due"] == 1
    records = await stored(kind, tmp_path, redis_url)
    assert records[key(by_id)].attempts == 2
    assert records[key(by_id)].first_attempt == failed.first_attempt
    assert records[key(by_id)].last_attempt > failed.last_attempt
    assert records[key(by_text)].attempts == 1

    # Spotify back; partial records due at once (APIGW_DEADLETTER_PARTIAL_AFTER = 0): both
    # succeed and leave the store.
    sandbox.clear_faults("spotify")
    third = await run_crawl(
        EnrichSpider, {**settings, "APIGW_DEADLETTER_PARTIAL_AFTER": 0}, dead_letters="1"
    )
    assert sorted(i["enrichment_status"] for i in third.items) == ["completed", "completed"]
    assert third.stats["apigw/deadletters/replayed"] == 2
    assert third.stats["apigw/deadletters/removed"] == 2
    assert await stored(kind, tmp_path, redis_url) == {}


@pytest_twisted.ensureDeferred
async def test_the_redis_stream_entry_names_its_fields(sandbox, tmp_path, redis_url, redis_server):
    by_text, _ = two_tracks(sandbox)
    sandbox.set_faults("musicbrainz", outage=True)
    settings = settings_for(sandbox, tmp_path, "redis", redis_url, APIGW_CACHE_NAMESPACE="myns")
    result = await run_crawl(ItemsSpider, settings, items=[dict(by_text)])
    assert result.items[0]["enrichment_status"] == "partial"
    entries = redis_server.command("XRANGE", "myns:deadletters", "-", "+")
    assert len(entries) == 1
    values = entries[0][1]
    fields = dict(zip(values[::2], values[1::2], strict=True))
    assert fields[b"key"].decode() == key(by_text)
    assert fields[b"status"] == b"partial"
    assert fields[b"attempts"] == b"1"
    record = json.loads(fields[b"record"])
    assert record["inputs"] == by_text
    assert set(record["errors"]) == {"musicbrainz"}
    assert redis_server.command("HGET", "myns:deadletters:index", key(by_text)) == entries[0][0]


@pytest_twisted.ensureDeferred
async def test_redis_down_while_writing_the_record_goes_to_the_file_and_is_replayed(
    sandbox, tmp_path, redis_url, redis_server, caplog
):
    caplog.set_level(logging.WARNING)
    by_text, by_id = two_tracks(sandbox)
    sandbox.set_faults("spotify", outage=True)
    settings = settings_for(
        sandbox, tmp_path, "redis", redis_url, APIGW_CACHE_TIMEOUT=0.5, APIGW_CACHE_ENABLED=False
    )
    redis_server.stop()
    first = await run_crawl(ItemsSpider, settings, items=[dict(by_text), dict(by_id)])
    assert sorted(i["enrichment_status"] for i in first.items) == ["failed", "partial"]
    assert first.stats["apigw/deadletters/fallback"] == 2
    assert first.stats["apigw/deadletters/written"] == 2
    assert "apigw/deadletters/unsaved" not in first.stats
    warnings = [r.getMessage() for r in caplog.records if "dead letters" in r.getMessage()]
    assert len([w for w in warnings if "writing them to" in w]) == 1, warnings
    kept = await stored("file", tmp_path)
    assert set(kept) == {key(by_text), key(by_id)}

    # Redis back: the replay reads the fallback file too; success empties it.
    redis_server.start()
    sandbox.clear_faults("spotify")
    replay = await run_crawl(
        EnrichSpider, {**settings, "APIGW_DEADLETTER_PARTIAL_AFTER": 0}, dead_letters="1"
    )
    assert sorted(i["enrichment_status"] for i in replay.items) == ["completed", "completed"]
    assert replay.stats["apigw/deadletters/removed"] == 2
    assert await stored("file", tmp_path) == {}
