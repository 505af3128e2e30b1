"""Requests that belong to no provider pass the middlewares untouched (Scrapy's behaviour)."""

from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scrapy_apigw.middlewares import (
    META_NOT_BEFORE,
    META_PROVIDER,
    CircuitBreakerMiddleware,
    RetryAfterMiddleware,
    TokenBucketThrottleMiddleware,
)


def finish(coroutine):
    """Drive a coroutine that never suspends (no provider: nothing to wait for)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("suspended")


def crawler():
    c = get_crawler(Spider, {"RETRY_TIMES": 2})
    c.spider = Spider.from_crawler(c, "s")
    return c


def test_other_hosts_are_not_throttled_broken_or_tagged():
    c = crawler()
    request = Request("https://tracklists.example.com/set/1")
    assert finish(TokenBucketThrottleMiddleware.from_crawler(c).process_request(request)) is None
    assert CircuitBreakerMiddleware.from_crawler(c).process_request(request) is None
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
