"""The progress line's ETA against the real remaining time of a crawl at a fixed rate."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest_twisted
from conftest import gateway_settings, provider_calls
from scrapy import signals
from scrapy.utils.test import get_crawler
from spiders import ItemsSpider

ITEMS = 50
#: MusicBrainz's configured rate; x10 under the sandbox (SANDBOX_SPEED 10): 5 req/s, 10 s in all,
#: half the sandbox's own limit, 200 ms between calls: timer lateness on a loaded machine (tens
#: of ms at worst) stays small against it.
RATE = 0.5


class Finish:
    """Wall time of every item that reached the feed (a bound method: signals hold weak refs)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def item_scraped(self, **_: object) -> None:
        self.times.append(time.time())


@pytest_twisted.ensureDeferred
async def test_the_eta_mid_crawl_is_within_20_percent_of_the_remaining_time(
    sandbox, tmp_path: Path, caplog
):
    # One provider at a fixed rate (no adaptive rate, no cache): one search per item, each a
    # different track, all scraped at once, so the queue is known from the first line on.
    items = [{"artist": f"Nobody {n:03d}", "title": f"Unknown Song {n:03d}"} for n in range(ITEMS)]
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_WATERFALL=["musicbrainz"],
        APIGW_PROVIDERS={"musicbrainz": {"rate": RATE, "burst": 1, "adaptive": False}},
        APIGW_CACHE_ENABLED=False,
        APIGW_PROGRESS_INTERVAL=0.5,
        CONCURRENT_ITEMS=ITEMS,
    )
    crawler = get_crawler(ItemsSpider, settings)
    finish = Finish()
    crawler.signals.connect(finish.item_scraped, signal=signals.item_scraped)
    with caplog.at_level(logging.INFO, logger="scrapy_apigw.ops.progress"):
        await crawler.crawl(items=items)
    assert len(finish.times) == ITEMS
    calls = [c for c in provider_calls(sandbox.log()) if c["provider"] == "musicbrainz"]
    assert len(calls) == ITEMS, "one call per item, none rate limited or retried"
    assert not [c for c in calls if c.get("rate_limited")]

    end = max(finish.times)
    lines = [
        (r.created, r.apigw_progress, r.getMessage())
        for r in caplog.records
        if hasattr(r, "apigw_progress")
    ]
    assert lines, "progress lines were logged"
    for _, _, message in lines[:3]:
        print(message)
    # Lines given once every item was in the pipeline and with a good part of the work left.
    middle = [
        (at, progress)
        for at, progress, _ in lines
        if progress.done + progress.in_pipeline == ITEMS
        and 0.25 * ITEMS <= progress.providers[0].queued <= 0.75 * ITEMS
    ]
    assert middle, [m for _, _, m in lines]
    rate = middle[0][1].providers[0].rate
    assert rate == RATE * sandbox.speed  # the effective rate, as configured (sandbox scaled)
    at, progress = min(middle, key=lambda m: abs(m[1].providers[0].queued - ITEMS / 2))
    remaining = end - at
    queued = progress.providers[0].queued
    print(f"ETA {progress.eta:.2f} s, real {remaining:.2f} s, queued {queued}")
    assert abs(progress.eta - remaining) <= 0.2 * remaining, (progress.eta, remaining)
    message = next(m for a, p, m in lines if p is progress)
    assert f"musicbrainz: {round(progress.providers[0].queued)} queued at 5.0/s, ETA " in message
