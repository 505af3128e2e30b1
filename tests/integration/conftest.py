"""Helpers for end-to-end crawls against the sandbox subprocess (real sockets, real Redis)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WORKTREE = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = WORKTREE / "example_project"
if str(EXAMPLE_PROJECT) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_PROJECT))


def example_crawl_command(*args: str) -> list[str]:
    """``scrapy crawl tracklists ARGS`` of the example project (run it with
    ``cwd=EXAMPLE_PROJECT, env=example_crawl_env()``)."""
    return [sys.executable, "-m", "scrapy", "crawl", "tracklists", *args]


def example_crawl_env() -> dict[str, str]:
    """The environment of an example crawl subprocess: it imports this checkout's package, and
    no ``APIGW_REDIS_URL`` of the caller's shell (the example's settings.py reads it)."""
    path = os.pathsep.join(p for p in (str(WORKTREE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("APIGW_REDIS_URL", None)
    return env


@dataclass
class CrawlResult:
    """What one crawl produced: the feed's items, the final stats, the wall time (s)."""

    items: list[dict[str, Any]]
    stats: dict[str, Any]
    seconds: float
    crawler: Any = field(repr=False, default=None)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            status = item.get("enrichment_status", "<missing>")
            counts[status] = counts.get(status, 0) + 1
        return counts


def gateway_settings(sandbox: Any, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Settings of a crawl through the add-on against the *sandbox* subprocess."""
    settings: dict[str, Any] = {
        "ADDONS": {"scrapy_apigw.Addon": 500},
        "APIGW_SANDBOX": True,
        "APIGW_SANDBOX_URL": sandbox.url,
        "APIGW_SANDBOX_SPEED": sandbox.speed,
        "APIGW_CACHE_PATH": str(tmp_path / "apigw-cache.sqlite3"),
        # Not the working directory's .scrapy/ (the default): a test's dead letters would be
        # the next test's, and the next benchmark's (each completed item then asks to remove).
        "APIGW_DEADLETTER_PATH": str(tmp_path / "deadletters.sqlite3"),
        "FEEDS": {str(tmp_path / "items.jsonl"): {"format": "jsonlines", "overwrite": True}},
        "FEED_EXPORT_ENCODING": "utf-8",
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
    }
    settings.update(extra)
    return settings


async def run_crawl(spidercls: type, settings: dict[str, Any], **kwargs: Any) -> CrawlResult:
    """Run one crawl to the end and read back its feed (the first FEEDS entry)."""
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(spidercls, settings)
    start = time.monotonic()
    await crawler.crawl(**kwargs)
    seconds = time.monotonic() - start
    feed = Path(next(iter(settings["FEEDS"])))
    items = (
        [json.loads(line) for line in feed.read_text("utf-8").splitlines() if line.strip()]
        if feed.exists()
        else []
    )
    return CrawlResult(items, dict(crawler.stats.get_stats()), seconds, crawler)


def provider_calls(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sandbox log entries that were provider API calls (not the website or admin)."""
    return [r for r in log if r.get("provider") not in (None, "site", "admin", "sandbox")]


@pytest.fixture
def tracklists_spider() -> type:
    from tracklists.spiders.tracklists import TracklistsSpider

    return TracklistsSpider
