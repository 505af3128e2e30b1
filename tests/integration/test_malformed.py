"""Malformed answers and the configured status lists, over the real sandbox, on both paths.

A truncated 200 is a failure of its own kind: retried with backoff, counted by the breaker,
never cached, and the item says why (issue 5: it was cached 30 days as "not found").
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from scrapy.http import Response
from spiders import ItemsSpider, UrlsSpider

from scrapy_apigw.exceptions import CircuitOpenError
from scrapy_apigw.middlewares import META_MALFORMED

TRACK = {"artist": "Daft Punk", "title": "One More Time"}
RELEASE = "/discogs/releases/2818492"  # Daft Punk - One More Time, in the sandbox catalogue


def calls_to(sandbox: Any, provider: str) -> list[dict[str, Any]]:
    return [r for r in provider_calls(sandbox.log()) if r["provider"] == provider]


def cached_keys(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "apigw-cache.sqlite3") as db:
        return [key for (key,) in db.execute("SELECT key FROM apigw_cache")]


class FlaggingUrlsSpider(UrlsSpider):
    """Also records what the gateway said of each response (``apigw_malformed``)."""

    name = "flagging_urls"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flags: list[str | None] = []

    def parse(self, response: Response) -> None:
        super().parse(response)
        self.flags.append(response.meta.get(META_MALFORMED))


@pytest_twisted.ensureDeferred
async def test_truncated_answers_are_retried_never_cached_and_leave_the_item_partial(
    sandbox, tmp_path
):
    sandbox.set_faults("discogs", malformed_rate=1.0)
    providers = {"discogs": {"max_retries": 2, "failure_threshold": 3}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])

    discogs = calls_to(sandbox, "discogs")
    assert [(c["status"], c["fault"]) for c in discogs] == [(200, "malformed")] * 3
    # Backoff between the attempts: 1 s then 2 s (±20 %), divided by the sandbox speed.
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(discogs)]
    assert gaps[0] >= 0.8 / sandbox.speed and gaps[1] >= 1.6 / sandbox.speed, gaps
    stats = result.stats
    assert stats["apigw/discogs/responses/malformed"] == 3
    assert "apigw/discogs/responses/success" not in stats
    assert stats["apigw/discogs/retries"] == 2
    assert stats["apigw/discogs/breaker/open"] == 1  # 3 malformed answers = 3 failures
    assert stats["apigw/discogs/results/failed"] == 1
    assert "apigw/discogs/results/not_found" not in stats
    [item] = result.items
    assert item["enrichment_status"] == "partial"
    assert item["enrichment_errors"] == {
        "discogs": "malformed answer (truncated JSON) after 2 retries"
    }
    assert "discogs_id" not in item and item["spotify_id"]
    keys = cached_keys(tmp_path)
    assert any(":spotify:" in k for k in keys)
    assert not [k for k in keys if ":discogs:" in k], keys

    # Nothing was kept: once the provider answers properly, the same cache gives the release.
    sandbox.reset()
    result = await run_crawl(ItemsSpider, gateway_settings(sandbox, tmp_path), items=[TRACK])
    [item] = result.items
    assert item["enrichment_status"] == "completed", item.get("enrichment_errors")
    assert item["discogs_id"] == 2818492


@pytest_twisted.ensureDeferred
async def test_when_the_calls_own_malformed_answers_open_the_circuit_the_reason_names_them(
    sandbox, tmp_path
):
    sandbox.set_faults("discogs", malformed_rate=1.0)
    providers = {"discogs": {"max_retries": 3, "failure_threshold": 2}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    assert len(calls_to(sandbox, "discogs")) == 2
    [item] = result.items
    assert item["enrichment_status"] == "partial"
    reason = item["enrichment_errors"]["discogs"]
    assert reason.startswith("malformed answer (truncated JSON) after 1 retries, then circuit open")


@pytest_twisted.ensureDeferred
async def test_a_retry_status_removed_by_the_user_fails_at_once(sandbox, tmp_path):
    sandbox.set_faults("discogs", outage=True)  # 503 {"message": "Service Unavailable"}
    providers = {"discogs": {"retry_statuses": [429, 500, 502, 504]}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    assert [c["status"] for c in calls_to(sandbox, "discogs")] == [503]
    [item] = result.items
    assert item["enrichment_errors"] == {"discogs": "HTTP 503, not retried"}
    assert "apigw/discogs/retries" not in result.stats


@pytest_twisted.ensureDeferred
async def test_spider_path_retries_a_malformed_200_then_hands_it_over_flagged(sandbox, tmp_path):
    sandbox.set_faults("discogs", malformed_rate=1.0)
    providers = {"discogs": {"max_retries": 2, "failure_threshold": 10}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(FlaggingUrlsSpider, settings, urls=[sandbox.url + RELEASE])
    calls = calls_to(sandbox, "discogs")
    assert [(c["status"], c["fault"]) for c in calls] == [(200, "malformed")] * 3
    assert calls[1]["t"] - calls[0]["t"] >= 0.8 / sandbox.speed  # backoff, not at once
    spider = result.crawler.spider
    assert [status for _, status, _ in spider.responses] == [200]
    assert spider.flags == ["truncated JSON"]
    assert result.stats["retry/count"] == 2
    assert result.stats["retry/reason_count/malformed answer (truncated JSON)"] == 2
    assert result.stats["apigw/discogs/responses/malformed"] == 3


@pytest_twisted.ensureDeferred
async def test_spider_path_malformed_answers_open_the_breaker_into_the_errback(sandbox, tmp_path):
    sandbox.set_faults("discogs", malformed_rate=1.0)
    providers = {"discogs": {"failure_threshold": 3}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(FlaggingUrlsSpider, settings, urls=[sandbox.url + RELEASE])
    assert len(calls_to(sandbox, "discogs")) == 3
    spider = result.crawler.spider
    assert spider.responses == []
    [(_, failure)] = spider.failures
    assert failure.check(CircuitOpenError)
    assert result.stats["apigw/discogs/breaker/open"] == 1


@pytest_twisted.ensureDeferred
async def test_spider_path_xml_answers_are_not_malformed(sandbox, tmp_path):
    # MusicBrainz serves XML when JSON is not asked for.
    url = f"{sandbox.url}/musicbrainz/ws/2/isrc/NOZSG0225519"
    settings = gateway_settings(
        sandbox, tmp_path, USER_AGENT="apigw-tests/1.0 ( test@example.invalid )"
    )
    result = await run_crawl(FlaggingUrlsSpider, settings, urls=[url])
    assert [c["status"] for c in calls_to(sandbox, "musicbrainz")] == [200]
    assert result.crawler.spider.flags == [None]
    assert "retry/count" not in result.stats
    assert result.stats["apigw/musicbrainz/responses/success"] == 1


@pytest_twisted.ensureDeferred
async def test_spider_path_retries_a_status_added_to_retry_statuses(sandbox, tmp_path):
    sandbox.set_faults("discogs", outage=True, error_status=520)
    providers = {"discogs": {"max_retries": 2, "retry_statuses": [429, 500, 502, 503, 504, 520]}}
    settings = gateway_settings(sandbox, tmp_path, APIGW_PROVIDERS=providers)
    result = await run_crawl(FlaggingUrlsSpider, settings, urls=[sandbox.url + RELEASE])
    assert [c["status"] for c in calls_to(sandbox, "discogs")] == [520] * 3
    assert result.stats["retry/count"] == 2
