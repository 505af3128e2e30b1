"""The add-on wires the middlewares and the pipeline, and APIGW_ENABLED turns everything off."""

import pytest
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from scrapy_apigw.middlewares import (
    CircuitBreakerMiddleware,
    RetryAfterMiddleware,
    TokenBucketThrottleMiddleware,
)
from scrapy_apigw.pipelines import APIEnrichmentPipeline

ADDON = {"ADDONS": {"scrapy_apigw.Addon": 500}}


def names(components):
    """Component priority dict with every key as a dotted path (keys may be classes)."""
    return {
        k if isinstance(k, str) else f"{k.__module__}.{k.__qualname__}": v
        for k, v in components.items()
    }


def enabled_downloader_middlewares(crawler):
    crawler._apply_settings()
    merged = crawler.settings.get_component_priority_dict_with_base("DOWNLOADER_MIDDLEWARES")
    return {
        k if isinstance(k, str) else f"{k.__module__}.{k.__qualname__}": v
        for k, v in merged.items()
        if v is not None
    }


def test_addon_replaces_builtin_retry_and_adds_the_gateway():
    mws = enabled_downloader_middlewares(get_crawler(settings_dict=ADDON))
    assert "scrapy.downloadermiddlewares.retry.RetryMiddleware" not in mws
    assert mws["scrapy_apigw.middlewares.RetryAfterMiddleware"] == 550
    assert mws["scrapy_apigw.middlewares.TokenBucketThrottleMiddleware"] == 560
    assert mws["scrapy_apigw.middlewares.CircuitBreakerMiddleware"] == 570


def test_addon_adds_the_pipeline():
    crawler = get_crawler(settings_dict=ADDON)
    crawler._apply_settings()
    assert (
        names(crawler.settings.getdict("ITEM_PIPELINES"))[
            "scrapy_apigw.pipelines.APIEnrichmentPipeline"
        ]
        == 500
    )


def test_disabled_addon_changes_nothing():
    crawler = get_crawler(settings_dict={**ADDON, "APIGW_ENABLED": False})
    mws = enabled_downloader_middlewares(crawler)
    assert mws["scrapy.downloadermiddlewares.retry.RetryMiddleware"] == 550
    assert not any(k.startswith("scrapy_apigw") for k in mws)
    assert "scrapy_apigw.pipelines.APIEnrichmentPipeline" not in names(
        crawler.settings.getdict("ITEM_PIPELINES")
    )


@pytest.mark.parametrize(
    "component", [TokenBucketThrottleMiddleware, CircuitBreakerMiddleware, APIEnrichmentPipeline]
)
def test_components_raise_not_configured_when_disabled(component):
    crawler = get_crawler(settings_dict={"APIGW_ENABLED": False})
    with pytest.raises(NotConfigured):
        component.from_crawler(crawler)


def test_components_raise_not_configured_without_a_reactor():
    # CrawlerRunner refuses this setting, AsyncCrawlerRunner accepts it: build the Crawler directly.
    crawler = Crawler(Spider, {"TWISTED_REACTOR_ENABLED": False})
    with pytest.raises(NotConfigured, match="TWISTED_REACTOR_ENABLED"):
        TokenBucketThrottleMiddleware.from_crawler(crawler)


def test_disabled_retry_middleware_is_plain_scrapy_retry():
    crawler = get_crawler(settings_dict={"APIGW_ENABLED": False})
    mw = RetryAfterMiddleware.from_crawler(crawler)
    assert isinstance(mw, RetryMiddleware) and mw.gateway is None


def test_components_of_one_crawler_share_one_gateway():
    crawler = get_crawler(settings_dict={})
    throttle = TokenBucketThrottleMiddleware.from_crawler(crawler)
    breaker = CircuitBreakerMiddleware.from_crawler(crawler)
    pipeline = APIEnrichmentPipeline.from_crawler(crawler)
    assert throttle.gateway is breaker.gateway is pipeline.gateway
    assert get_crawler().settings is not crawler.settings
