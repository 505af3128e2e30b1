"""Property: whatever an item holds, the enrichment pipeline gives it back, marked, untouched.

Items of any shape (``item_shapes.py``) go through the real ``APIEnrichmentPipeline.process_item``
of a real crawler (add-on settings, sandbox mode against the sandbox subprocess, embedded cache
in ``tmp_path``). Every item must come back as the same object, with an ``enrichment_status``
among completed/partial/failed/skipped and its original fields untouched (``item_problems``).
The 100,000-item run of the same generator is ``bench/bench_items.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest_twisted
from hypothesis import HealthCheck, given, settings
from integration.conftest import gateway_settings, provider_calls
from item_shapes import catalog_pool, items
from itemadapter import ItemAdapter
from pipeline_run import Before, close_pipeline, item_problems, open_pipeline
from scrapy.utils.defer import deferred_from_coro

#: Examples per run: about 20 s on a 2-core machine once the cache is warm.
EXAMPLES = 300


@pytest_twisted.ensureDeferred
async def test_no_item_is_ever_lost_whatever_its_shape(sandbox, tmp_path, caplog):
    from twisted.internet import reactor
    from twisted.internet.threads import blockingCallFromThread, deferToThread

    pool = catalog_pool()
    caplog.set_level(logging.ERROR, logger="scrapy_apigw")
    # The test coroutine is driven by a Deferred (pytest-twisted): coroutines that await
    # asyncio futures run as asyncio tasks, awaited through deferred_from_coro.
    crawler, pipeline = await deferred_from_coro(open_pipeline(gateway_settings(sandbox, tmp_path)))
    statuses: Counter[str] = Counter()

    async def run(item: Any) -> str:
        before = Before.of(item)
        returned = await pipeline.process_item(item)
        assert item_problems(before, returned) == []
        return ItemAdapter(returned)["enrichment_status"]

    # Hypothesis calls the property synchronously: it runs in a worker thread and hands each
    # item to the reactor thread, where the pipeline runs, waiting for the result.
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(items(pool, free_text=10))
    def property_(item: Any) -> None:
        status = blockingCallFromThread(reactor, lambda: deferred_from_coro(run(item)))
        statuses[status] += 1

    try:
        # Warm-up: every pool track, every artist form; these are real catalog pairs, found.
        for track in pool.tracks:
            for artist in (track.credit, track.artists[0], list(track.artists)):
                item = {"artist": artist, "title": track.title}
                assert await deferred_from_coro(run(item)) == "completed", item
        warm_calls = len(provider_calls(sandbox.log()))
        await deferToThread(property_)
    finally:
        await deferred_from_coro(close_pipeline(pipeline))
    assert sum(statuses.values()) >= EXAMPLES
    # The generator reaches both paths: items looked up and items with nothing to look up.
    assert statuses["completed"] > 0 and statuses["skipped"] > 0, statuses
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    calls = provider_calls(sandbox.log())
    # Whatever the text, every query was valid Lucene (MusicBrainz answers 400 otherwise) and
    # no URL or header was too long.
    assert [r for r in calls if r["status"] in (400, 414, 431)] == []
    # Traffic stays small: most lookups after the warm-up were answered by the cache.
    hits = sum(v for k, v in crawler.stats.get_stats().items() if k.endswith("/cache/hit"))
    assert hits > len(calls) - warm_calls, (hits, len(calls), warm_calls, statuses)
