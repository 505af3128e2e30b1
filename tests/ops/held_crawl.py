"""A crawl of the example project's tracklists spider that stays open until told to close.

Run as a subprocess: ``python held_crawl.py SETTINGS.json``. The JSON file holds the Scrapy
settings, plus ``limit`` (tracklists to crawl), ``idle_file`` and ``release_file``. When the
crawl has nothing left to do it writes its stats to ``idle_file`` (JSON) and then keeps the
spider open (``DontCloseSpider`` on every idle signal) until ``release_file`` exists, so a
Prometheus scraping its ``/metrics`` keeps seeing its series: they go stale the moment the
target disappears.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example_project"


def main(config_path: str) -> None:
    sys.path.insert(0, str(EXAMPLE_PROJECT))
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.exceptions import DontCloseSpider
    from tracklists.spiders.tracklists import TracklistsSpider

    config = json.loads(Path(config_path).read_text())
    idle_file = Path(config.pop("idle_file"))
    release_file = Path(config.pop("release_file"))
    limit = config.pop("limit")

    class HeldTracklistsSpider(TracklistsSpider):
        """The tracklists spider, held open after its last item until *release_file* exists."""

        name = "held_tracklists"

        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> HeldTracklistsSpider:
            spider = super().from_crawler(crawler, *args, **kwargs)
            crawler.signals.connect(spider.hold, signal=signals.spider_idle)
            return spider

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
