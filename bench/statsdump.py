"""A Scrapy extension the crawl benchmark adds to every crawl: dump the crawl's stats as JSON.

Enabled by ``bench_crawl.py`` with ``-s EXTENSIONS={"statsdump.StatsDump": 1000}`` and
``-s BENCH_STATS_PATH=<file>`` (``bench/`` on ``PYTHONPATH``). It gives the benchmark the
crawl's own ``elapsed_time_seconds`` (without interpreter start-up and imports) and the
``apigw/*`` counters (cache hits, throttle waits), which ``LOG_LEVEL=WARNING`` keeps out of the
log. It is added to every crawl alike, so it does not bias any ratio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class StatsDump:
    """Write ``crawler.stats`` to ``BENCH_STATS_PATH`` when the engine stops."""

    def __init__(self, crawler: Crawler, path: Path) -> None:
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StatsDump:
        """Build the extension; ``NotConfigured`` without ``BENCH_STATS_PATH``."""
        path = crawler.settings.get("BENCH_STATS_PATH")
        if not path:
            raise NotConfigured("BENCH_STATS_PATH is not set")
        ext = cls(crawler, Path(path))
        # engine_stopped comes after spider_closed, when CoreStats has set elapsed_time_seconds.
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def engine_stopped(self, **_: Any) -> None:
        """Dump the stats (non-JSON values such as datetimes as strings)."""
        assert self.crawler.stats is not None
        stats = dict(self.crawler.stats.get_stats())
        self.path.write_text(json.dumps(stats, default=str, sort_keys=True), encoding="utf-8")
