"""Spider path: a malformed 2xx provider response is retried, counted, and flagged on the response.

The rule is generic (a spider request has no call type): empty, HTML, or not JSON when JSON was
expected. XML that nobody asked JSON for is fine. ``retry_statuses`` decides here too.
"""

from __future__ import annotations

import time

import pytest
from coroutines import finish
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.middlewares import (
    META_MALFORMED,
    META_NOT_BEFORE,
    CircuitBreakerMiddleware,
    RetryAfterMiddleware,
    TokenBucketThrottleMiddleware,
    classify_response,
)

JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml; charset=utf-8"}
HTML = {"Content-Type": "text/html; charset=utf-8"}
RELEASE = "https://api.discogs.com/releases/1"
MB_JSON = "https://musicbrainz.org/ws/2/isrc/GBAAA9900303?fmt=json"
MB_XML = "https://musicbrainz.org/ws/2/isrc/GBAAA9900303"


def crawler(**settings):
    c = get_crawler(Spider, settings)
    c.spider = Spider.from_crawler(c, "s")
    return c


def respond(url, body, response_headers, status=200, **request_kwargs):
    request = Request(url, **request_kwargs)
    response = Response(url, status=status, headers=response_headers, body=body, request=request)
    return request, response


def outcome_of(c, request, response):
    gateway = Gateway.for_crawler(c)
    return classify_response(gateway, gateway.provider_for_url(request.url), response, request)


@pytest.mark.parametrize(
    ("url", "body", "headers", "request_headers", "kind"),
    [
        (RELEASE, b'{"id": 1, "title": "Stock', JSON, {}, "truncated JSON"),
        (RELEASE, b"", JSON, {}, "empty body"),
        (RELEASE, b"<html><body>Cloudflare</body></html>", HTML, {}, "HTML page"),
        (MB_JSON, b"<metadata/>", XML, {}, "wrong content type application/xml"),
        (
            MB_XML,
            b"oops",
            {"Content-Type": "text/plain"},
            {"Accept": "application/json"},
            "wrong content type text/plain",
        ),
        (MB_XML, b"not json", {}, {"Accept": "application/json"}, "not JSON"),
    ],
)
def test_a_malformed_2xx_is_retried_with_backoff_and_named(
    url, body, headers, request_headers, kind
) -> None:
    c = crawler()
    retry = RetryAfterMiddleware.from_crawler(c)
    request, response = respond(url, body, headers, headers=request_headers)
    before = time.time()
    again = retry.process_response(request, response)
    assert isinstance(again, Request) and again.meta["retry_times"] == 1
    # Backoff (1 s ±20 %), not an immediate retry.
    assert 0.8 <= again.meta[META_NOT_BEFORE] - before <= 1.3
    assert request.meta[META_MALFORMED] == kind
    provider = "discogs" if "discogs" in url else "musicbrainz"
    assert c.stats.get_value(f"apigw/{provider}/retries") == 1
    assert c.stats.get_value(f"retry/reason_count/malformed answer ({kind})") == 1


@pytest.mark.parametrize(
    ("url", "body", "headers"),
    [
        # MusicBrainz serves XML when JSON is not asked for: valid, and not ours to judge.
        (MB_XML, b'<?xml version="1.0"?><metadata><isrc id="GBAAA9900303"/></metadata>', XML),
        (MB_XML, b'<?xml version="1.0"?><metad', XML),
        # A web page of a provider's domain, outside its API.
        ("https://musicbrainz.org/recording/bf7845cc", b"<!DOCTYPE html><html></html>", HTML),
        (RELEASE, b'{"id": 1, "title": "Stockholm"}', JSON),
    ],
)
def test_answers_that_are_fine_pass_untouched(url, body, headers) -> None:
    c = crawler()
    retry = RetryAfterMiddleware.from_crawler(c)
    request, response = respond(url, body, headers)
    assert retry.process_response(request, response) is response
    assert META_MALFORMED not in request.meta
    assert "retry/count" not in c.stats.get_stats()


def test_after_the_last_retry_the_response_reaches_the_callback_flagged() -> None:
    c = crawler(APIGW_PROVIDERS={"discogs": {"max_retries": 2}})
    retry = RetryAfterMiddleware.from_crawler(c)
    request, response = respond(RELEASE, b'{"id"', JSON, meta={"retry_times": 2})
    assert retry.process_response(request, response) is response
    assert response.meta[META_MALFORMED] == "truncated JSON"
    assert c.stats.get_value("retry/max_reached") == 1


def test_a_good_response_to_the_retry_clears_the_flag() -> None:
    c = crawler()
    retry = RetryAfterMiddleware.from_crawler(c)
    request, response = respond(RELEASE, b'{"id"', JSON)
    again = retry.process_response(request, response)
    assert again.meta[META_MALFORMED] == "truncated JSON"  # copied onto the retry
    fine = Response(RELEASE, status=200, headers=JSON, body=b'{"id": 1}', request=again)
    assert retry.process_response(again, fine) is fine
    assert META_MALFORMED not in fine.meta


def test_malformed_responses_count_for_the_breaker_and_the_stats() -> None:
    c = crawler(APIGW_PROVIDERS={"discogs": {"failure_threshold": 3}})
    breaker = CircuitBreakerMiddleware.from_crawler(c)
    throttle = TokenBucketThrottleMiddleware.from_crawler(c)
    for _ in range(3):
        request, response = respond(RELEASE, b"", JSON)
        throttle.process_response(request, finish(breaker.process_response(request, response)))
    assert Gateway.for_crawler(c).states["discogs"].breaker.state is BreakerState.OPEN
    assert c.stats.get_value("apigw/discogs/responses/malformed") == 3
    assert c.stats.get_value("apigw/discogs/breaker/open") == 1


def test_each_response_is_judged_once_for_the_three_middlewares() -> None:
    c = crawler()
    request, response = respond(RELEASE, b"<html></html>", HTML)
    assert outcome_of(c, request, response) is Outcome.MALFORMED
    response._body = b'{"id": 1}'  # memoised: the verdict does not change
    assert outcome_of(c, request, response) is Outcome.MALFORMED


def test_retry_statuses_decide_on_the_spider_path_too() -> None:
    c = crawler(APIGW_PROVIDERS={"discogs": {"retry_statuses": [429, 500, 502, 504, 520]}})
    retry = RetryAfterMiddleware.from_crawler(c)
    request, response = respond(RELEASE, b'{"message": "x"}', JSON, status=503)
    assert retry.process_response(request, response) is response  # 503 removed: not retried
    request, response = respond(RELEASE, b"", {}, status=520)
    assert isinstance(retry.process_response(request, response), Request)  # 520 added


def test_rate_limit_statuses_decide_on_the_spider_path_too() -> None:
    c = crawler(APIGW_PROVIDERS={"discogs": {"rate_limit_statuses": [429, 503]}})
    request, response = respond(RELEASE, b'{"message": "x"}', JSON, status=503)
    assert outcome_of(c, request, response) is Outcome.RATE_LIMITED
