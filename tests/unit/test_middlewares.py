"""Requests that belong to no provider pass the middlewares untouched (Scrapy's behaviour)."""

from types import SimpleNamespace

import pytest_twisted
from coroutines import finish
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.middlewares import (
    META_NOT_BEFORE,
    META_PROVIDER,
    META_SENT_AT,
    CircuitBreakerMiddleware,
    RetryAfterMiddleware,
    TokenBucketThrottleMiddleware,
)
from scrapy_apigw.settings import GatewaySettings


def crawler():
    c = get_crawler(Spider, {"RETRY_TIMES": 2})
    c.spider = Spider.from_crawler(c, "s")
    return c


def test_other_hosts_are_not_throttled_broken_or_tagged():
    c = crawler()
    request = Request("https://tracklists.example.com/set/1")
    assert finish(TokenBucketThrottleMiddleware.from_crawler(c).process_request(request)) is None
    assert finish(CircuitBreakerMiddleware.from_crawler(c).process_request(request)) is None
    assert META_PROVIDER not in request.meta
    assert c.stats.get_stats() == {}


def test_other_hosts_keep_scrapy_retry_behaviour():
    c = crawler()
    retry = RetryAfterMiddleware.from_crawler(c)
    request = Request("https://tracklists.example.com/set/1")
    again = retry.process_response(request, Response(request.url, status=503, request=request))
    assert isinstance(again, Request) and again.meta["retry_times"] == 1
    assert META_NOT_BEFORE not in again.meta
    assert retry.process_response(request, Response(request.url, status=404)).status == 404


def test_provider_requests_are_retried_with_a_delay_and_tagged():
    c = crawler()
    retry = RetryAfterMiddleware.from_crawler(c)
    request = Request("https://musicbrainz.org/ws/2/isrc/GBAAA9900303?fmt=json")
    response = Response(request.url, status=502, request=request)
    again = retry.process_response(request, response)
    assert isinstance(again, Request) and again.meta["retry_times"] == 1
    assert again.meta[META_NOT_BEFORE] > 0
    assert c.stats.get_value("retry/count") == 1
    assert c.stats.get_value("apigw/musicbrainz/retries") == 1
    refused = Response(request.url, status=400, request=request)
    assert retry.process_response(request, refused) is refused


@pytest_twisted.ensureDeferred
async def test_a_spider_retry_is_held_until_its_not_before_on_the_gateways_clocks():
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet.task import Clock, deferLater

    async def settle():
        from twisted.internet import reactor

        for _ in range(3):
            await deferLater(reactor, 0)

    c = crawler()
    timers = Clock()  # the gateway's monotonic clock and its timers
    timers.advance(100.0)
    wall = FakeClock(1_767_225_600.0)
    settings = GatewaySettings.from_settings(c.settings, environ={})
    gateway = Gateway(c, settings, clock=timers.seconds, reactor=timers, wall=wall)
    c._apigw_gateway = gateway  # what Gateway.for_crawler returns
    c.engine = SimpleNamespace()  # no downloader slots to count the wait in
    retry = RetryAfterMiddleware.from_crawler(c)
    throttle = TokenBucketThrottleMiddleware.from_crawler(c)
    request = Request("https://musicbrainz.org/ws/2/isrc/GBAAA9900303?fmt=json")
    response = Response(request.url, status=429, headers={"Retry-After": "7"}, request=request)
    again = retry.process_response(request, response)
    assert again.meta[META_NOT_BEFORE] == 1_767_225_607.0  # wall now + Retry-After

    # The retry reaches the throttle 2 s later: it waits the 5 s left, on the gateway's clock.
    timers.advance(2.0)
    wall.advance(2.0)
    sent = deferred_from_coro(throttle.process_request(again))
    await settle()
    timers.advance(4.999)
    await settle()
    assert not sent.called
    timers.advance(0.001)
    await settle()
    assert sent.called
    assert again.meta[META_SENT_AT] == 107.0
