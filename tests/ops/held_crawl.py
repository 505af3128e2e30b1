"""A crawl of the example project's tracklists spider that stays open until told to close.

Run as a subprocess: ``python held_crawl.py SETTINGS.json``. The JSON file holds the Scrapy
settings, plus ``limit`` (tracklists to crawl), ``idle_file``, ``release_file`` and optionally
``start_file``. With ``start_file`` the spider sends nothing until that file exists, so a
Prometheus can scrape the crawl's ``/metrics`` once before any counter moves (a series whose
first sample is already its final value shows no rate). When the crawl has nothing left to do
it writes its stats to ``idle_file`` (JSON), then keeps the spider open (``DontCloseSpider`` on
every idle signal) until ``release_file`` exists, so a Prometheus scraping its ``/metrics``
keeps seeing its series: they go stale the moment the target disappears.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example_project"


def main(config_path: str) -> None:
    sys.path.insert(0, str(EXAMPLE_PROJECT))
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.exceptions import DontCloseSpider
    from scrapy.utils.asyncio import sleep
    from tracklists.spiders.tracklists import TracklistsSpider

    config = json.loads(Path(config_path).read_text())
    idle_file = Path(config.pop("idle_file"))
    release_file = Path(config.pop("release_file"))
    limit = config.pop("limit")
    start_file = Path(config.pop("start_file")) if config.get("start_file") else None
    config.pop("start_file", None)

    class HeldTracklistsSpider(TracklistsSpider):
        """The tracklists spider, held open after its last item until *release_file* exists."""

        name = "held_tracklists"

        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> HeldTracklistsSpider:
            spider = super().from_crawler(crawler, *args, **kwargs)
            crawler.signals.connect(spider.hold, signal=signals.spider_idle)
            return spider

        async def start(self) -> AsyncIterator[Any]:
            deadline = time.monotonic() + 120
            while start_file is not None and not start_file.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{start_file} did not appear within 120 s")
                await sleep(0.1)
            async for request in super().start():
                yield request

        def hold(self) -> None:
            if not idle_file.exists():
                stats = self.crawler.stats.get_stats()
                partial = idle_file.with_suffix(".tmp")
                partial.write_text(json.dumps(stats, default=str))
                partial.replace(idle_file)
            if not release_file.exists():
                raise DontCloseSpider

    process = CrawlerProcess(config)
    process.crawl(HeldTracklistsSpider, limit=limit)
    process.start()


if __name__ == "__main__":
    main(sys.argv[1])
