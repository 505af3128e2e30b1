"""A finished crawler is freed with its gateway: a process running many crawls keeps none."""

from __future__ import annotations

import gc
import weakref

import pytest_twisted
from conftest import gateway_settings, run_crawl
from scrapy.utils.asyncio import sleep
from spiders import ItemsSpider

from scrapy_apigw.gateway import Gateway

TRACK = {"artist": "Daft Punk", "title": "One More Time"}


@pytest_twisted.ensureDeferred
async def test_finished_crawlers_are_freed_with_their_gateways(sandbox, tmp_path):
    refs = []
    for n in range(3):
        settings = gateway_settings(sandbox, tmp_path / str(n))
        result = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
        assert result.statuses() == {"completed": 1}
        gateway = Gateway.for_crawler(result.crawler)
        refs.append((weakref.ref(result.crawler), weakref.ref(gateway)))
        del result, gateway
    # Under a non-asyncio reactor this coroutine resumes inside the last crawl's callback chain,
    # whose frames still refer to it: let them unwind first.
    await sleep(0)
    gc.collect()
    assert [(crawler(), gateway()) for crawler, gateway in refs] == [(None, None)] * 3
