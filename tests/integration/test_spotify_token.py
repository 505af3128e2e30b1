"""End to end against a sandbox whose tokens expire fast and whose audio features are forbidden."""

from __future__ import annotations

import pytest
import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from fixtures_sandbox import start_sandbox_process
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.test import get_crawler
from spiders import ItemsSpider
from twisted.internet import task

from scrapy_apigw.gateway import Gateway
from scrapy_apigw.providers.base import ApiCall
from scrapy_apigw.transport import Transport

SPEED = 10.0


@pytest.fixture(scope="module")
def strict_sandbox():
    # Tokens live token_ttl / speed = 2 s while expires_in says 20 s: the client meets
    # "The access token expired" as a real client does after an hour.
    sandbox = start_sandbox_process(SPEED, "--token-ttl", "20", "--audio-features", "forbidden")
    yield sandbox
    sandbox.stop()


@pytest_twisted.ensureDeferred
async def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(strict_sandbox, tmp_path):
    from twisted.internet import reactor

    strict_sandbox.reset()
    settings = gateway_settings(strict_sandbox, tmp_path, APIGW_CACHE_ENABLED=False)
    crawler = get_crawler(ItemsSpider, settings)
    gateway = Gateway.for_crawler(crawler)
    transport = Transport(gateway)
    search = ApiCall("spotify", "search", "/search", (("q", "track:Strobe"), ("type", "track")))
    try:
        first = await deferred_from_coro(transport.fetch(search))
        await task.deferLater(reactor, 2.5)
        second = await deferred_from_coro(transport.fetch(search))
    finally:
        await deferred_from_coro(transport.close())
    assert first.kind == second.kind == "ok"
    statuses = [
        (r["path"].rsplit("/", 1)[-1], r["status"]) for r in provider_calls(strict_sandbox.log())
    ]
    assert statuses == [
        ("token", 200),
        ("search", 200),
        ("search", 401),
        ("token", 200),
        ("search", 200),
    ]
    stats = crawler.stats.get_stats()
    assert stats["apigw/spotify/auth/refreshes"] == 1
    assert "apigw/spotify/retries" not in stats, "a refresh is not a retry"


@pytest_twisted.ensureDeferred
async def test_forbidden_audio_features_are_remembered_and_not_a_failure(strict_sandbox, tmp_path):
    strict_sandbox.reset()
    titles = ("One More Time", "Around the World", "Da Funk", "Harder, Better, Faster, Stronger")
    items = [{"artist": "Daft Punk", "title": t} for t in titles]
    settings = gateway_settings(strict_sandbox, tmp_path)
    # The first track learns the 403; the three after the pause must not ask again.
    result = await run_crawl(ItemsSpider, settings, items=items, pause_after=1)
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 4
    assert all(
        "spotify_id" in i and "bpm" not in i and "camelot_key" not in i for i in result.items
    )
    features = [r for r in provider_calls(strict_sandbox.log()) if "audio-features" in r["path"]]
    assert len(features) == 1 and features[0]["status"] == 403
