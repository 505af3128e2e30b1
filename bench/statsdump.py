"""A Scrapy extension the crawl benchmark adds to every crawl: dump the crawl's stats as JSON.

Enabled by ``bench_crawl.py`` with ``-s EXTENSIONS={"statsdump.StatsDump": 1000}`` and
``-s BENCH_STATS_PATH=<file>`` (``bench/`` on ``PYTHONPATH``). It gives the benchmark the
crawl's own ``elapsed_time_seconds`` (without interpreter start-up and imports) and the
``apigw/*`` counters (cache hits, throttle waits), which ``LOG_LEVEL=WARNING`` keeps out of the
log. It is added to every crawl alike, so it does not bias any ratio.

With shared limits it also writes the fleet acquire's round-trip histogram
(``bench/fleet/acquire_buckets_us``: bucket -> count; ``bench/fleet/acquire_max_us``), which
``bench_fleet.py`` merges over the processes for the fleet's percentiles. The fleet store is
taken from the gateway when the engine starts (the gateway has joined the fleet then; it drops
the store when the spider closes).
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
        self.fleet_store: Any = None  # the gateway's FleetStore, with shared limits

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StatsDump:
        """Build the extension; ``NotConfigured`` without ``BENCH_STATS_PATH``."""
        path = crawler.settings.get("BENCH_STATS_PATH")
        if not path:
            raise NotConfigured("BENCH_STATS_PATH is not set")
        ext = cls(crawler, Path(path))
        # engine_stopped comes after spider_closed, when CoreStats has set elapsed_time_seconds.
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        return ext

    def engine_started(self, **_: Any) -> None:
        """Keep the gateway's fleet store, if any (its round-trip histograms)."""
        from scrapy_apigw.gateway import _CRAWLER_ATTRIBUTE  # where the crawler keeps it

        gateway = getattr(self.crawler, _CRAWLER_ATTRIBUTE, None)
        shared = getattr(gateway, "shared", None)
        if shared is not None:
            self.fleet_store = shared.store

    def engine_stopped(self, **_: Any) -> None:
        """Dump the stats (non-JSON values such as datetimes as strings)."""
        assert self.crawler.stats is not None
        stats = dict(self.crawler.stats.get_stats())
        acquires = self.fleet_store.round_trips.get("rate") if self.fleet_store else None
        if acquires is not None:
            stats["bench/fleet/acquire_buckets_us"] = acquires.buckets()
            stats["bench/fleet/acquire_max_us"] = acquires.max_us
        self.path.write_text(json.dumps(stats, default=str, sort_keys=True), encoding="utf-8")
