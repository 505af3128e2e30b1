"""The gateway records the fleet acquire's round trips as stats when the spider closes."""

from __future__ import annotations

import pytest_twisted
from fleet_helpers import task
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_apigw.gateway import Gateway
from scrapy_apigw.settings import GatewaySettings


@pytest_twisted.ensureDeferred
async def test_closing_records_the_acquire_round_trips_as_stats(redis_url: str) -> None:
    from twisted.internet import reactor

    crawler = get_crawler()
    settings = GatewaySettings.from_settings(
        Settings({"APIGW_REDIS_URL": redis_url, "APIGW_FLEET": "stats"}), environ={}
    )
    gateway = Gateway(crawler, settings, clock=reactor.seconds, reactor=reactor)
    await task(gateway.open())
    state = gateway.states["lastfm"]  # 5 req/s, burst 25: three sends are granted at once
    for _ in range(3):
        await task(gateway.acquire(state))
    assert crawler.stats.get_value("apigw/fleet/acquires") is None  # set at close
    await task(gateway.close())
    stats = crawler.stats.get_stats()
    assert stats["apigw/fleet/acquires"] == 3
    p50, p99, longest = (stats[f"apigw/fleet/acquire_{k}_us"] for k in ("p50", "p99", "max"))
    assert 0 < p50 <= p99 <= longest < 500_000  # within the store's timeout (0.5 s)
