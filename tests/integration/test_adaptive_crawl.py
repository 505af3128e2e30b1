"""One crawl process against a provider whose real quota is lower than its configured burst:
the adaptive rate finds what the provider grants.

The session sandbox runs at speed 10; the client's Last.fm is configured at 1 req/s x 10 = 10
req/s with a burst of 10 (bursts are not scaled). The sandbox's quota fault puts a sliding
window of 10 requests per real second on top of Last.fm's own (far looser) limit, answering
429 error 29 with a Retry-After over it: a "10 req/s sliding-window API" against which a
10 req/s bucket with a burst of 10 sends twice the window after any idle second.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from conftest import gateway_settings, run_crawl
from spiders import UrlsSpider

pytestmark = pytest.mark.crawl

QUOTA, WINDOW = 10, 1.0  # requests per moving second, real time
REQUESTS = 150


def lastfm_urls(base: str, count: int) -> list[str]:
    return [
        f"{base}/lastfm/2.0/?method=track.getInfo&artist=a{n}&track=t{n}&format=json"
        "&api_key=sandbox-lastfm-key"
        for n in range(count)
    ]


async def crawl(sandbox: Any, tmp_path: Any, count: int, adaptive: bool) -> Any:
    sandbox.set_faults("lastfm", quota_limit=QUOTA, quota_window=WINDOW)
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_CACHE_ENABLED=False,
        APIGW_PROVIDERS={"lastfm": {"rate": 1, "burst": 10, "adaptive": adaptive}},
    )
    result = await run_crawl(UrlsSpider, settings, urls=lastfm_urls(sandbox.url, count))
    spider = result.crawler.spider
    assert spider.failures == []
    assert len(spider.responses) == count  # every request answered in the end (retries)
    calls = [r for r in sandbox.log() if r["provider"] == "lastfm"]
    return result, calls


def second_half_rejections(calls: list[dict[str, Any]]) -> int:
    first, last = calls[0]["t"], calls[-1]["t"]
    middle = (first + last) / 2
    return sum(1 for r in calls if r["rate_limited"] and r["t"] >= middle)


def quota_used(calls: list[dict[str, Any]]) -> float:
    """Admitted requests over what the quota admits in the crawl's span."""
    admitted = [r["t"] for r in calls if not r["rate_limited"]]
    return len(admitted) / (QUOTA / WINDOW * (admitted[-1] - admitted[0]) + QUOTA)


@pytest_twisted.ensureDeferred
async def test_the_rejections_stop_early_and_most_of_the_quota_is_used(sandbox, tmp_path):
    result, calls = await crawl(sandbox, tmp_path, REQUESTS, adaptive=True)
    rejections = [r for r in calls if r["rate_limited"]]
    used = quota_used(calls)
    stats = result.stats
    print(
        f"adaptive: {len(calls)} calls, {len(rejections)} rejections "
        f"({second_half_rejections(calls)} in the second half), {used:.0%} of the quota, "
        f"effective {stats.get('apigw/lastfm/rate/effective')} req/s burst "
        f"{stats.get('apigw/lastfm/burst/effective')}, "
        f"{stats.get('apigw/lastfm/rate/decreases')} decreases"
    )
    assert rejections, "the configured burst must overflow the provider's window once"
    assert second_half_rejections(calls) == 0
    assert used >= 0.8
    assert stats["apigw/lastfm/rate/decreases"] >= 1
    assert stats["apigw/lastfm/rate/effective"] < 10.0
    assert stats["apigw/lastfm/burst/effective"] < 10


@pytest_twisted.ensureDeferred
async def test_without_adaptation_the_same_crawl_keeps_being_rejected(sandbox, tmp_path):
    # The baseline the test above is measured against.
    result, calls = await crawl(sandbox, tmp_path, REQUESTS, adaptive=False)
    rejections = [r for r in calls if r["rate_limited"]]
    print(
        f"adaptive off: {len(calls)} calls, {len(rejections)} rejections "
        f"({second_half_rejections(calls)} in the second half), {quota_used(calls):.0%} used"
    )
    assert second_half_rejections(calls) > 0
    assert "apigw/lastfm/rate/effective" not in result.stats
