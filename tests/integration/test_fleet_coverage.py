"""The fleet's coverage report: every crawl adds its items' coverage to the Redis cache's
counters, and ``apigw serve``'s ``GET /stats`` reports their sum, after the crawls ended."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest_twisted
from conftest import gateway_settings, run_crawl
from exposition import Serve

from scrapy_apigw.ops.coverage import COVERAGE_FIELDS


@pytest_twisted.ensureDeferred
async def test_apigw_serve_reports_the_coverage_of_every_crawl_that_used_the_cache(
    sandbox: Any, redis_url: str, tmp_path: Path, tracklists_spider: type
) -> None:
    statuses: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    items = 0
    for n, limit in enumerate((1, 2)):  # the second crawl: the first's tracks again, and more
        feed = tmp_path / f"items{n}.jsonl"
        settings = gateway_settings(
            sandbox,
            tmp_path,
            APIGW_REDIS_URL=redis_url,
            APIGW_CACHE_NAMESPACE="coverage-test",
            FEEDS={str(feed): {"format": "jsonlines", "overwrite": True}},
        )
        result = await run_crawl(tracklists_spider, settings, limit=limit)
        for item in (json.loads(line) for line in feed.read_text("utf-8").splitlines()):
            items += 1
            statuses[item.get("enrichment_status") or "none"] += 1
            fields.update(f for f in COVERAGE_FIELDS if item.get(f) not in (None, "", [], {}))
        assert result.stats["apigw/coverage/items"] == len(result.items)
    serve = Serve(tmp_path / "prometheus", "--redis-url", redis_url, "--namespace", "coverage-test")
    try:
        port = serve.port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as response:
            report = json.loads(response.read())
    finally:
        serve.stop()
    assert report["scope"] == "fleet"
    assert report["items"] == items > 20
    assert {s: v["count"] for s, v in report["statuses"].items() if v["count"]} == statuses
    assert {f: v["count"] for f, v in report["fields"].items() if v["count"]} == fields
    assert fields["spotify_id"] > 0
