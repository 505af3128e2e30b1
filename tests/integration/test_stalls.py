"""Nothing stalls the crawl: continuous rate limiting, the item deadline, a stop by CLOSESPIDER_*.

Against the sandbox subprocess over loopback. Retry-After values are real seconds on both sides.
"""

from __future__ import annotations

import gc
import logging

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from spiders import ItemsSpider, PageItemsSpider, UrlsSpider

from scrapy_apigw.exceptions import RateLimitedError

TRACKS = [
    {"artist": "Daft Punk", "title": "One More Time"},
    {"artist": "Moby", "title": "Porcelain"},
    {"artist": "Air", "title": "Sexy Boy"},
    {"artist": "Massive Attack", "title": "Teardrop"},
]


def calls_to(log, provider):
    return [r for r in provider_calls(log) if r["provider"] == provider]


@pytest_twisted.ensureDeferred
async def test_a_provider_that_keeps_rate_limiting_is_skipped_and_items_move_on(sandbox, tmp_path):
    # Spotify answers 429 with Retry-After: 3 to everything. Before: one request per pause, each
    # item waiting 1 + 5 retries x 3 s in line (4 items took over 40 s, all "HTTP 429 after
    # 5 retries"). Now: after 2 refused pauses in a row Spotify is unavailable for 3 s.
    sandbox.set_faults("spotify", rate_limit_next=10_000, retry_after="3")
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_PROVIDERS={"spotify": {"max_rate_limit_streak": 2, "max_rate_limit_wait": 0}},
    )
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS])
    items, stats = result.items, result.stats
    assert len(items) == len(TRACKS)
    assert {i["enrichment_status"] for i in items} == {"partial"}, result.statuses()
    assert {i["enrichment_errors"]["spotify"] for i in items} == {
        "rate limited (unavailable for 3 s)"
    }
    assert all("musicbrainz_id" in i for i in items)  # the other providers still answered
    assert stats["apigw/spotify/rate_limit/unavailable"] == 1
    # Two refused pauses: the first wave of requests, then the one retry sent when the first
    # pause ended; the other waiting calls failed when the provider became unavailable.
    limited = [c for c in calls_to(sandbox.log(), "spotify") if c["status"] == 429]
    assert len(limited) <= len(TRACKS) + 1, len(limited)
    assert stats["apigw/spotify/rate_limit/rejected"] >= len(TRACKS) - 1
    assert result.seconds < 2 * 3 + 8, result.seconds  # two pauses, plus the rest of the crawl


@pytest_twisted.ensureDeferred
async def test_a_retry_after_of_hours_makes_the_provider_unavailable_at_once(sandbox, tmp_path):
    # Spotify's QUOTA_EXCEEDED: Retry-After: 86400. The later items must not queue for a day.
    sandbox.set_faults("spotify", rate_limit_next=1, retry_after="86400")
    items = [dict(t) for t in TRACKS]
    result = await run_crawl(
        ItemsSpider, gateway_settings(sandbox, tmp_path), items=items, pause_after=1
    )
    assert len(result.items) == len(TRACKS)
    reasons = [i["enrichment_errors"]["spotify"] for i in result.items]
    # 86400 s, or 86399 s for the items that came a second later
    assert all(
        r.startswith("rate limited (unavailable for 8639") or r.endswith(" 86400 s)")
        for r in reasons
    ), reasons
    assert {i["enrichment_status"] for i in result.items} == {"partial"}
    # One call got the hint; the three later items never reached Spotify's API.
    api_calls = [c for c in calls_to(sandbox.log(), "spotify") if "/token" not in c["path"]]
    assert len(api_calls) == 1 and api_calls[0]["status"] == 429
    assert result.stats["apigw/spotify/rate_limit/unavailable"] == 1
    assert result.seconds < 10


@pytest_twisted.ensureDeferred
async def test_spider_requests_to_an_unavailable_provider_fail_into_the_errback(sandbox, tmp_path):
    sandbox.set_faults("musicbrainz", rate_limit_next=10_000, retry_after="2")
    urls = [f"{sandbox.url}/musicbrainz/ws/2/isrc/ZZZZZ00000{n:02d}?fmt=json" for n in range(6)]
    settings = gateway_settings(
        sandbox,
        tmp_path,
        USER_AGENT="apigw-tests/1.0 ( test@example.invalid )",
        APIGW_PROVIDERS={"musicbrainz": {"max_rate_limit_streak": 2, "max_rate_limit_wait": 0}},
    )
    result = await run_crawl(UrlsSpider, settings, urls=urls)
    spider = result.crawler.spider
    limited = [f for _, f in spider.failures if f.check(RateLimitedError)]
    assert limited, (spider.failures, spider.responses)
    assert "rate limited (unavailable for" in str(limited[0].value)
    # Every request ended: refused at once, or its last rate-limited answer passed on.
    assert len(spider.failures) + len(spider.responses) == len(urls)
    assert result.stats["apigw/musicbrainz/rate_limit/unavailable"] == 1
    calls = calls_to(sandbox.log(), "musicbrainz")
    assert len(calls) < 2 * len(urls), len(calls)  # not 1 + max_retries (5) each
    assert result.seconds < 2 * 2 + 8, result.seconds


@pytest_twisted.ensureDeferred
async def test_the_item_timeout_emits_the_item_with_what_it_has(sandbox, tmp_path, caplog):
    # MusicBrainz answers after 30 s; the item may take 2 s: it is emitted then, with Spotify's
    # fields, and MusicBrainz, Discogs and Last.fm failed with the reason.
    sandbox.set_faults("musicbrainz", latency=30)
    settings = gateway_settings(sandbox, tmp_path, APIGW_ITEM_TIMEOUT=2)
    caplog.set_level(logging.INFO)
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS[:2]])
    assert len(result.items) == 2
    for item in result.items:
        assert item["enrichment_status"] == "partial"
        assert item["enrichment_errors"] == {
            "musicbrainz": "item timeout (2 s)",
            "discogs": "item timeout (2 s)",
            "lastfm": "item timeout (2 s)",
        }
        assert item["enrichment_sources"] == ["spotify"] and item["spotify_id"]
    assert result.stats["apigw/items/timed_out"] == 2
    assert 2 <= result.seconds < 2 + 8, result.seconds
    # One MusicBrainz request for both items (their ISRCs in one batched search), not retried
    # after the items moved on.
    assert len(calls_to(sandbox.log(), "musicbrainz")) == 1
    assert "apigw/musicbrainz/responses/network_error" not in result.stats
    # Nothing left behind: no error from the aborted requests, even once collected.
    gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "log_count/ERROR" not in result.stats
    assert_no_timer_of_ours()


def assert_no_timer_of_ours():
    from twisted.internet import reactor

    from scrapy_apigw.enrichment.run import ItemRun
    from scrapy_apigw.pacer import Pacer
    from scrapy_apigw.waits import Waits

    ours = [
        c
        for c in reactor.getDelayedCalls()
        if isinstance(getattr(c.func, "__self__", None), (ItemRun, Pacer, Waits))
    ]
    assert ours == []


@pytest_twisted.ensureDeferred
async def test_closespider_itemcount_stops_within_the_shutdown_timeout_and_keeps_every_item(
    sandbox, tmp_path
):
    # Discogs answers after 30 s. Two rows with nothing to look up are scraped at once and
    # reach CLOSESPIDER_ITEMCOUNT = 2; the engine starts closing while the four tracks wait for
    # Discogs. Before: the stop waited for them (30 s and more). Now: within 1 s they are
    # emitted, Discogs and Last.fm "interrupted".
    sandbox.set_faults("discogs", latency=30)
    settings = gateway_settings(
        sandbox, tmp_path, CLOSESPIDER_ITEMCOUNT=2, APIGW_SHUTDOWN_TIMEOUT=1
    )
    tracks = [dict(t) for t in TRACKS]
    # The blank rows arrive once every track has called Discogs.
    blanks = [{"artist": "", "title": ""}, {"title": "ID"}]
    result = await run_crawl(
        PageItemsSpider,
        settings,
        url=f"{sandbox.url}/site/",
        items=tracks,
        later=blanks,
        calls=len(TRACKS),
    )
    rows = tracks + blanks
    assert result.stats["finish_reason"] == "closespider_itemcount"
    assert len(result.items) == len(rows) == result.stats["item_scraped_count"]
    tracks = [i for i in result.items if i.get("artist")]
    assert len(tracks) == len(TRACKS)
    for item in tracks:
        assert item["enrichment_status"] == "partial", result.statuses()
        assert item["enrichment_errors"] == {"discogs": "interrupted", "lastfm": "interrupted"}
        assert "spotify" in item["enrichment_sources"]
    assert result.stats["apigw/items/interrupted"] == len(TRACKS)
    assert result.seconds < 1 + 10, result.seconds
    assert_no_timer_of_ours()
