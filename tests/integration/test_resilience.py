"""Outages, rate limits and refused requests, on both paths (pipeline and spider requests)."""

from __future__ import annotations

import email.utils
import time

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from spiders import ItemsSpider, UrlsSpider

from scrapy_apigw.exceptions import CircuitOpenError


def calls_to(log, provider):
    return [r for r in provider_calls(log) if r["provider"] == provider]


TRACK = {"artist": "Daft Punk", "title": "One More Time"}


@pytest_twisted.ensureDeferred
async def test_outage_opens_the_breaker_and_items_stay_partial(
    sandbox, tmp_path, tracklists_spider
):
    sandbox.set_faults("musicbrainz", outage=True)
    result = await run_crawl(tracklists_spider, gateway_settings(sandbox, tmp_path), limit=2)
    stats, items = result.stats, result.items
    looked_up = [i for i in items if i["enrichment_status"] != "skipped"]
    assert len(looked_up) >= 30
    assert stats.get("apigw/musicbrainz/breaker/open", 0) >= 1
    assert all(i["enrichment_status"] == "partial" for i in looked_up), result.statuses()
    assert all("musicbrainz" in i["enrichment_errors"] for i in looked_up)
    assert sum("spotify_id" in i and "label" in i for i in looked_up) >= 0.9 * len(looked_up)
    # The breaker stops the hammering: 3 failures open it, then only half-open probes
    # (2 per open period of 60 s / speed) reach the provider; without it every item would
    # try 1 + 5 retries.
    mb_calls = len(calls_to(sandbox.log(), "musicbrainz"))
    open_period = 60 / sandbox.speed
    probes_allowed = 2 * (result.seconds / open_period + 1)
    assert mb_calls <= 3 + probes_allowed, (mb_calls, result.seconds)
    assert mb_calls < len(looked_up)
    assert stats.get("apigw/musicbrainz/breaker/rejected", 0) > 0
    print(f"outage crawl: {len(items)} items in {result.seconds:.1f} s, {mb_calls} MB calls")


async def enrich_one_after_forced_429(sandbox, tmp_path, retry_after: str):
    sandbox.set_faults("spotify", rate_limit_next=1, retry_after=retry_after)
    result = await run_crawl(ItemsSpider, gateway_settings(sandbox, tmp_path), items=[dict(TRACK)])
    calls = calls_to(sandbox.log(), "spotify")
    limited = [i for i, r in enumerate(calls) if r["status"] == 429]
    assert len(limited) == 1
    first_429 = calls[limited[0]]
    after = calls[limited[0] + 1 :]
    assert after and after[0]["status"] == 200
    return result, after[0]["t"] - first_429["t"]


@pytest_twisted.ensureDeferred
async def test_retry_after_seconds_pauses_the_provider_then_calls_succeed(sandbox, tmp_path):
    result, gap = await enrich_one_after_forced_429(sandbox, tmp_path, "3")
    assert 3.0 <= gap < 6.0
    assert result.items[0]["enrichment_status"] == "completed"
    assert result.stats["apigw/spotify/pauses"] == 1


@pytest_twisted.ensureDeferred
async def test_retry_after_http_date_pauses_the_provider(sandbox, tmp_path):
    when = email.utils.formatdate(time.time() + 4, usegmt=True)
    result, gap = await enrich_one_after_forced_429(sandbox, tmp_path, when)
    # HTTP-dates have a 1 s resolution, measured against the response's Date header.
    assert 2.0 <= gap < 7.0
    assert result.items[0]["enrichment_status"] == "completed"


@pytest_twisted.ensureDeferred
async def test_spider_requests_honour_retry_after_and_keep_scrapy_retry_stats(sandbox, tmp_path):
    sandbox.set_faults("musicbrainz", rate_limit_next=1, retry_after="3")
    url = f"{sandbox.url}/musicbrainz/ws/2/isrc/GBAAA9900303?fmt=json"
    settings = gateway_settings(
        sandbox, tmp_path, USER_AGENT="apigw-tests/1.0 ( test@example.invalid )"
    )
    result = await run_crawl(UrlsSpider, settings, urls=[url])
    calls = calls_to(sandbox.log(), "musicbrainz")
    assert [c["status"] for c in calls][:1] == [503]
    assert len(calls) == 2 and calls[1]["t"] - calls[0]["t"] >= 3.0
    assert result.stats["retry/count"] == 1
    assert result.stats["apigw/musicbrainz/retries"] == 1


@pytest_twisted.ensureDeferred
async def test_400_401_403_404_are_never_retried(sandbox, tmp_path):
    base = sandbox.url
    urls = [
        f"{base}/spotify/v1/tracks/4uLU6hMCjMI75M1A2tKUQC",  # 401: no token
        f"{base}/musicbrainz/ws/2/isrc/NOT-AN-ISRC?fmt=json",  # 400: malformed
        f"{base}/musicbrainz/ws/2/isrc/ZZZZZ0000000?fmt=json",  # 404: unknown
        f"{base}/discogs/database/search?q=strobe",  # 401: unauthenticated search
    ]
    settings = gateway_settings(
        sandbox, tmp_path, USER_AGENT="apigw-tests/1.0 ( test@example.invalid )"
    )
    crawler_result = await run_crawl(UrlsSpider, settings, urls=urls)
    statuses = sorted(r["status"] for r in provider_calls(sandbox.log()))
    assert statuses == [400, 401, 401, 404]
    assert "retry/count" not in crawler_result.stats
    # 403: MusicBrainz refuses a request without a User-Agent.
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path, USER_AGENT="")
    crawler_result = await run_crawl(
        UrlsSpider, settings, urls=[urls[2]], headers={"User-Agent": ""}
    )
    assert [r["status"] for r in provider_calls(sandbox.log())] == [403]
    assert "retry/count" not in crawler_result.stats


@pytest_twisted.ensureDeferred
async def test_open_circuit_fails_spider_requests_at_once_into_the_errback(sandbox, tmp_path):
    sandbox.set_faults("discogs", outage=True)
    urls = [f"{sandbox.url}/discogs/releases/{n}" for n in range(1, 31)]
    settings = gateway_settings(
        sandbox, tmp_path, RETRY_TIMES=0, APIGW_PROVIDERS={"discogs": {"max_retries": 0}}
    )
    result = await run_crawl(UrlsSpider, settings, urls=urls)
    spider = result.crawler.spider
    open_errors = [f for _, f in spider.failures if f.check(CircuitOpenError)]
    assert open_errors, spider.failures
    assert "circuit open" in str(open_errors[0].value)
    discogs_calls = len(calls_to(sandbox.log(), "discogs"))
    assert discogs_calls < len(urls)
    assert discogs_calls + len(open_errors) == len(urls)


@pytest_twisted.ensureDeferred
async def test_a_throttled_provider_does_not_starve_other_hosts(sandbox, tmp_path):
    # MusicBrainz paced at 2 req/s in real time; the website pages must not queue behind it.
    mb = [f"{sandbox.url}/musicbrainz/ws/2/isrc/ZZZZZ00000{n:02d}?fmt=json" for n in range(16)]
    # Providers live on their own hosts in real life: "localhost" gives the site pages a
    # downloader slot of their own, as a real tracklist site would have.
    site_host = sandbox.url.replace("127.0.0.1", "localhost")
    site = [f"{site_host}/site/tracklists/{1 + n % 15}?n={n}" for n in range(48)]
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_SANDBOX_SPEED=1,
        APIGW_PROVIDERS={"musicbrainz": {"rate": 2, "burst": 1}},
        USER_AGENT="apigw-tests/1.0 ( test@example.invalid )",
        CONCURRENT_REQUESTS=8,
    )
    start = time.monotonic()
    result = await run_crawl(UrlsSpider, settings, urls=mb + site)
    responses = result.crawler.spider.responses
    site_done = max(t for url, _, t in responses if "/site/" in url) - start
    mb_done = max(t for url, _, t in responses if "/musicbrainz/" in url) - start
    arrivals = [r["t"] for r in calls_to(sandbox.log(), "musicbrainz")]
    assert len(arrivals) == 16
    # Paced at 2 req/s with burst 1: 15 intervals of 0.5 s, and never more than rate + burst
    # arrivals in any 1 s window (PyrateLimiter's measure; single gaps carry delivery jitter).
    assert arrivals[-1] - arrivals[0] >= 7.0
    assert max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals) <= 3
    assert mb_done >= 7.0
    # 48 site pages finish while MusicBrainz is still being paced.
    assert site_done < mb_done / 4, (site_done, mb_done)
    print(f"site pages done after {site_done:.2f} s, MusicBrainz after {mb_done:.2f} s")
