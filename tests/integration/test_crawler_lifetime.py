"""A finished crawler is freed with its gateway: a process running many crawls keeps none."""

from __future__ import annotations

import gc
import time
import weakref

import pytest_twisted
from conftest import gateway_settings, run_crawl
from spiders import ItemsSpider

from scrapy_apigw.gateway import Gateway

TRACK = {"artist": "Daft Punk", "title": "One More Time"}


async def pause(seconds: float) -> None:
    """Let the reactor run for *seconds* (any reactor: the test coroutine is driven by a
    Deferred, so it awaits one)."""
    from twisted.internet import reactor, task

    await task.deferLater(reactor, seconds, lambda: None)


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
    # whose frames still refer to it; and a loaded machine may not have run the crawl's last
    # reactor callbacks yet (closed connections, cancelled timers): wait until they have run,
    # for a bounded time. A crawler kept for good stays alive and fails the test.
    deadline = time.monotonic() + 10.0
    while True:
        await pause(0.05)
        gc.collect()
        alive = [(crawler(), gateway()) for crawler, gateway in refs]
        if alive == [(None, None)] * 3 or time.monotonic() > deadline:
            break
    held = [c for c, _ in alive if c is not None]
    assert alive == [(None, None)] * 3, [
        sorted({type(r).__qualname__ for r in gc.get_referrers(c)}) for c in held
    ]
