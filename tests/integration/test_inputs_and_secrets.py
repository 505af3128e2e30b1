"""Bad input never crashes and loses nothing; secrets never leave the wire; Redis can die."""

from __future__ import annotations

import copy
import dataclasses
import logging
import re

import attr
import pytest_twisted
import scrapy
from conftest import gateway_settings, provider_calls, run_crawl
from scrapy import signals
from spiders import ItemsSpider

from scrapy_apigw.enrichment.fields import OUTPUT_FIELDS

SPOTIFY_TOKEN = re.compile(r"BQ[A-Za-z0-9_-]{60,}")


class TrackItem(scrapy.Item):
    artist = scrapy.Field()
    title = scrapy.Field()
    enrichment_status = scrapy.Field()
    spotify_id = scrapy.Field()


@dataclasses.dataclass
class TrackData:
    artist: str
    title: str
    enrichment_status: str | None = None
    bpm: float | None = None


@attr.s(auto_attribs=True)
class TrackAttrs:
    artist: str
    title: str
    enrichment_status: str | None = None
    musicbrainz_id: str | None = None


def sandbox_catalog(sandbox):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/catalog") as response:
        return json.loads(response.read())["tracks"]


@pytest_twisted.ensureDeferred
async def test_bad_and_odd_input_is_marked_never_lost(sandbox, tmp_path, caplog):
    catalog = sandbox_catalog(sandbox)
    specials = [t for t in catalog if any(c in t["title"] for c in '()[]:"!/-&')][:8]
    non_ascii = [t for t in catalog if not (t["title"] + "".join(t["artists"])).isascii()][:4]
    assert len(specials) >= 5 and len(non_ascii) >= 3
    dicts = [
        {"title": "No Artist Here"},
        {"artist": "Someone"},
        {"artist": "   ", "title": "\t"},
        {"artist": 42, "title": ["not", "text"]},
        {"artist": "Daft Punk", "title": "x" * 5000},
        {"artist": "A" * 5000, "title": 'Title ( ) [ ] : " ! / - & \\ * ? ~ ^ {}'},
        *({"artist": " & ".join(t["artists"]), "title": t["title"]} for t in specials + non_ascii),
    ]
    for n, item in enumerate(dicts):
        item["n"] = n
    typed = [
        TrackItem(artist="Daft Punk", title="One More Time"),
        TrackData(artist="Daft Punk", title="One More Time"),
        TrackAttrs(artist="Daft Punk", title="One More Time"),
    ]
    originals = copy.deepcopy(dicts[:4])
    caplog.set_level(logging.WARNING)
    settings = gateway_settings(sandbox, tmp_path)
    result = await run_crawl(ItemsSpider, settings, items=dicts + typed)
    assert len(result.items) == len(dicts) + len(typed), "every item reaches the feed"
    # The feed is in completion order: find items by their number, typed ones by their fields.
    out = {i["n"]: i for i in result.items if "n" in i}
    for n in range(4):
        assert out[n]["enrichment_status"] == "skipped"
        assert {k: v for k, v in out[n].items() if k != "enrichment_status"} == originals[n]
    assert out[4]["enrichment_status"] in ("completed", "partial")
    assert out[5]["enrichment_status"] in ("completed", "partial")
    found = [out[n] for n in range(6, len(dicts))]
    assert all(i["enrichment_status"] == "completed" for i in found), [
        (i["title"], i.get("enrichment_errors")) for i in found
    ]
    assert sum("musicbrainz_id" in i for i in found) >= len(found) - 1
    # The sandbox rejects unescaped Lucene with 400, as MusicBrainz does: no such answer.
    mb = [r for r in provider_calls(sandbox.log()) if r["provider"] == "musicbrainz"]
    assert mb and not [r for r in mb if r["status"] == 400]
    assert not [r for r in provider_calls(sandbox.log()) if r["status"] in (414, 431)]
    # Every itemadapter type works; undeclared fields are simply not set (one warning).
    rest = [i for i in result.items if "n" not in i]
    (scrapy_item,) = [i for i in rest if "spotify_id" in i and "bpm" not in i]
    (data_item,) = [i for i in rest if "bpm" in i]
    (attrs_item,) = [i for i in rest if "musicbrainz_id" in i]
    assert scrapy_item["enrichment_status"] == "completed" and "label" not in scrapy_item
    assert data_item["bpm"] > 0 and attrs_item["musicbrainz_id"]
    warnings = [r.getMessage() for r in caplog.records if "does not declare" in r.getMessage()]
    assert len([w for w in warnings if w.startswith("apigw: TrackItem")]) == 1
    assert result.stats["apigw/items/skipped"] == 4


#: How to read every value of a Redis key, by its TYPE (the cache's strings, the fleet's hashes...).
READ_BY_TYPE = {
    "string": ("GET",),
    "hash": ("HGETALL",),
    "zset": ("ZRANGE", 0, -1, "WITHSCORES"),
    "set": ("SMEMBERS",),
    "list": ("LRANGE", 0, -1),
    "stream": ("XRANGE", "-", "+"),  # dead letters
}


def _flat(value: list) -> list[bytes]:
    """The bytes of a nested RESP reply (a stream's entries are [id, [field, value, ...]])."""
    flat: list[bytes] = []
    for part in value:
        flat.extend(_flat(part) if isinstance(part, list) else [part or b""])
    return flat


def redis_dump(redis_server) -> str:
    """Every key and value in the test Redis (through the fixture's raw RESP client): the cache
    entries and the fleet's shared state."""
    lines = []
    for key in redis_server.command("KEYS", "*"):
        kind = redis_server.command("TYPE", key)
        command, *args = READ_BY_TYPE[kind]
        value = redis_server.command(command, key, *args)
        parts = list(_flat(value)) if isinstance(value, list) else [value or b""]
        lines.append(b" ".join([key, *parts]).decode("utf-8", "replace"))
    return "\n".join(lines)


@pytest_twisted.ensureDeferred
async def test_no_secret_reaches_logs_stats_cache_or_feed(
    sandbox, redis_server, redis_url, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    settings = gateway_settings(sandbox, tmp_path, APIGW_REDIS_URL=redis_url, LOG_LEVEL="DEBUG")
    result = await run_crawl(
        ItemsSpider, settings, items=[{"artist": "Daft Punk", "title": "One More Time"}]
    )
    assert result.items[0]["enrichment_status"] == "completed"
    assert result.stats["apigw/spotify/auth/tokens"] >= 1, "the crawl obtained a Spotify token"
    secrets = ["sandbox-client-secret", "sandbox-discogs-token", "sandbox-lastfm-key"]
    logs = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    stats = repr(result.stats)
    feed = next(iter(settings["FEEDS"]))
    with open(feed, encoding="utf-8") as f:
        feed_text = f.read()
    cache = redis_dump(redis_server)
    assert "apigw:" in cache and "spotify" in cache
    assert ":fleet:{" in cache, "the fleet's shared state is searched too"
    for secret in secrets:
        for where, text in (
            ("logs", logs),
            ("stats", stats),
            ("feed", feed_text),
            ("cache", cache),
        ):
            assert secret not in text, f"a secret leaked into the {where}"
            # Spotify access tokens issued by the sandbox look like real ones: "BQ" + 80 chars.
            assert not SPOTIFY_TOKEN.search(text), f"a Spotify token leaked into the {where}"


@pytest_twisted.ensureDeferred
async def test_redis_down_before_the_crawl_means_misses_not_a_crash(
    sandbox, redis_server, tmp_path, caplog, tracklists_spider
):
    redis_server.stop()
    try:
        settings = gateway_settings(sandbox, tmp_path, APIGW_REDIS_URL=redis_server.url)
        caplog.set_level(logging.WARNING)
        result = await run_crawl(tracklists_spider, settings, limit=1)
    finally:
        redis_server.start()
    assert len(result.items) >= 18
    assert result.statuses().get("completed", 0) >= len(result.items) - 4
    degraded = sum(
        v for k, v in result.stats.items() if k.endswith(("/cache/error", "/cache/skipped"))
    )
    assert degraded >= 1
    assert sum(v for k, v in result.stats.items() if k.endswith("/cache/miss")) > 0
    assert any("cache unavailable" in r.getMessage().lower() for r in caplog.records)


@pytest_twisted.ensureDeferred
async def test_redis_dying_mid_crawl_is_survived(
    sandbox, redis_server, redis_url, tmp_path, tracklists_spider
):
    from scrapy.utils.test import get_crawler

    settings = gateway_settings(sandbox, tmp_path, APIGW_REDIS_URL=redis_url)
    crawler = get_crawler(tracklists_spider, settings)
    scraped = []

    def on_item(item, response, spider):
        scraped.append(item)
        if len(scraped) == 5:
            redis_server.stop()

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    try:
        await crawler.crawl(limit=2)
    finally:
        redis_server.start()
    stats = crawler.stats.get_stats()
    assert len(scraped) >= 36
    assert sum(v for k, v in stats.items() if k.endswith("/cache/error")) >= 1
    assert sum(item["enrichment_status"] == "completed" for item in scraped) >= len(scraped) - 6


def test_output_fields_are_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "fields.md").read_text()
    missing = [f for f in OUTPUT_FIELDS if f"`{f}`" not in doc]
    assert not missing
